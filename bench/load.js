'use strict';

/*
 * The load generator, run by bench/run.ts in its own process so that it never shares an event
 * loop with the server it measures:
 *
 *   node bench/load.js '<json config>'
 *
 * config: { url, connections, durationSec, requests: [{ headers, body }], expect?: string }
 * Each connection loops over `requests` (one per tenant token), starting at its own offset so
 * that the connections spread over the tenants instead of marching through them in step.
 * Prints one JSON line: throughput, latency percentiles (from every response's own timing,
 * in fractional milliseconds) and every kind of failure autocannon saw.
 */

const { URL } = require('node:url');
const autocannon = require('autocannon');

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

async function main() {
  const config = JSON.parse(process.argv[2] || '{}');
  if (!config.url || !Array.isArray(config.requests) || config.requests.length === 0) {
    throw new Error('usage: node bench/load.js \'{"url":...,"connections":10,"durationSec":10,"requests":[{"headers":{},"body":"..."}]}\'');
  }
  const template = config.requests.map((request) => ({
    method: 'POST',
    path: new URL(config.url).pathname,
    headers: { 'content-type': 'application/json', ...request.headers },
    body: request.body,
  }));
  const connections = config.connections || 10;
  const step = Math.max(1, Math.floor(template.length / connections));
  let clientIndex = 0;
  const latencies = [];
  const expect = config.expect;

  const instance = autocannon({
    url: config.url,
    connections,
    pipelining: 1,
    duration: config.durationSec || 10,
    timeout: 30,
    requests: template,
    setupClient(client) {
      const offset = (clientIndex * step) % template.length;
      clientIndex += 1;
      const rotated = template.slice(offset).concat(template.slice(0, offset)).map((request) => ({ ...request }));
      client.setRequests(rotated);
    },
    // A GraphQL error still answers 200: a response without the expected field is a mismatch.
    verifyBody: expect ? (body) => typeof body === 'string' && body.includes(expect) && !body.includes('"errors"') : undefined,
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const completed = result.requests.total;
  const seconds = result.duration;
  process.stdout.write(
    `${JSON.stringify({
      requests: completed,
      durationSec: seconds,
      rps: completed / seconds,
      latencyMs: {
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies.length ? latencies[latencies.length - 1] : null,
        mean: latencies.length ? latencies.reduce((sum, value) => sum + value, 0) / latencies.length : null,
      },
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      mismatches: result.mismatches,
      statusCodes: result.statusCodeStats,
    })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : String(error)}\n`);
  process.exit(1);
});
