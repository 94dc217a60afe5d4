'use strict';
/* global setTimeout, clearTimeout */

/*
 * A paced load generator (open loop), run by the noisy section in its own process:
 *
 *   node bench/paced.js '<json config>'
 *
 * config: { url, ratePerSecond, connections, warmupSec, durationSec, timeoutSec,
 *           requests: [{ headers, body }], expect?: string }
 *
 * Request i is due at start + i / ratePerSecond, whatever happened to the ones before: when the
 * server slows down, requests queue for one of the `connections` keep-alive sockets, and that
 * wait counts. Latency runs from the moment a request was due, not from when it could be sent
 * (a closed loop, or autocannon's -R, which sends each connection's quota for the second
 * back-to-back and then idles, would leave out exactly the queueing a slowed-down server
 * causes). Requests due during the first warmupSec are sent but not counted.
 *
 * Prints one JSON line in the shape of bench/load.js's (LoadResult), plus `due` (requests due in
 * the measured window), `answered` and `codes` (the first error code of every response that
 * carried one, counted).
 */

const http = require('node:http');
const { URL } = require('node:url');
const { performance } = require('node:perf_hooks');

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

async function main() {
  const config = JSON.parse(process.argv[2] || '{}');
  if (!config.url || !(config.ratePerSecond > 0) || !Array.isArray(config.requests) || config.requests.length === 0) {
    throw new Error('usage: node bench/paced.js \'{"url":...,"ratePerSecond":50,"connections":4,"durationSec":10,"requests":[{"headers":{},"body":"..."}]}\'');
  }
  const url = new URL(config.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.connections || 4 });
  const intervalMs = 1000 / config.ratePerSecond;
  const warmupMs = (config.warmupSec || 0) * 1000;
  const durationMs = (config.durationSec || 10) * 1000;
  const timeoutMs = (config.timeoutSec || 30) * 1000;
  const total = Math.ceil((warmupMs + durationMs) / intervalMs);
  const expect = config.expect;

  const latencies = [];
  const statusCodes = {};
  const codes = {};
  const counts = { due: 0, answered: 0, non2xx: 0, errors: 0, timeouts: 0, mismatches: 0 };
  let lastAnswerAt = 0;

  const start = performance.now() + 50; // leave time to set up the first timer
  const windowStart = start + warmupMs;
  let sent = 0;
  let outstanding = 0;
  let allSent;
  const done = new Promise((resolve) => (allSent = resolve));

  function settle() {
    outstanding -= 1;
    if (outstanding === 0 && sent === total) allSent();
  }

  function fire(index) {
    const dueAt = start + index * intervalMs;
    const measured = dueAt >= windowStart;
    if (measured) counts.due += 1;
    const request = config.requests[index % config.requests.length];
    outstanding += 1;
    let finished = false;
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (measured) outcome();
      settle();
    };
    const req = http.request(
      { protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', ...request.headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () =>
          finish(() => {
            const now = performance.now();
            counts.answered += 1;
            lastAnswerAt = Math.max(lastAnswerAt, now);
            const status = res.statusCode || 0;
            statusCodes[status] = { count: ((statusCodes[status] && statusCodes[status].count) || 0) + 1 };
            const code = /"code":"([A-Z_]+)"/.exec(body);
            if (code) codes[code[1]] = (codes[code[1]] || 0) + 1;
            if (status < 200 || status >= 300) {
              counts.non2xx += 1;
              return;
            }
            latencies.push(now - dueAt);
            if (expect && (!body.includes(expect) || body.includes('"errors"'))) counts.mismatches += 1;
          }),
        );
        res.on('error', () => finish(() => (counts.errors += 1)));
      },
    );
    // From the moment the request was sent: a request still waiting for a socket has its own
    // deadline too, so nothing waits forever.
    const deadline = setTimeout(() => {
      finish(() => {
        counts.errors += 1;
        counts.timeouts += 1;
      });
      req.destroy(new Error('timed out'));
    }, timeoutMs);
    req.on('error', () => finish(() => (counts.errors += 1)));
    req.end(request.body);
  }

  await new Promise((resolve) => {
    function tick() {
      const now = performance.now();
      while (sent < total && start + sent * intervalMs <= now) {
        fire(sent);
        sent += 1;
      }
      if (sent === total) {
        resolve();
        return;
      }
      setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
    }
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
  if (outstanding > 0) await done;
  agent.destroy();

  latencies.sort((a, b) => a - b);
  // The window lasts durationSec, or until its last answer when the server fell behind.
  const spanSec = Math.max(durationMs, lastAnswerAt - windowStart) / 1000;
  const good = latencies.length - counts.mismatches;
  process.stdout.write(
    `${JSON.stringify({
      requests: counts.answered,
      durationSec: spanSec,
      rps: good / spanSec,
      latencyMs: {
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies.length ? latencies[latencies.length - 1] : null,
        mean: latencies.length ? latencies.reduce((sum, value) => sum + value, 0) / latencies.length : null,
      },
      non2xx: counts.non2xx,
      errors: counts.errors,
      timeouts: counts.timeouts,
      mismatches: counts.mismatches,
      statusCodes,
      due: counts.due,
      answered: counts.answered,
      codes,
    })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : String(error)}\n`);
  process.exit(1);
});
