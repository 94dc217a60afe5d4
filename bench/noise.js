'use strict';

/*
 * The noise of the noisy section: autocannon at full speed (a closed loop per connection), in
 * its own process, until told to stop.
 *
 *   node bench/noise.js '<json config>'
 *
 * config: { url, connections, timeoutSec, maxDurationSec,
 *           requests: [{ headers, body }], addresses?: { prefix: '10.7', count: 8 } }
 *
 * Bodies and header values may hold two placeholders, filled in for every request sent:
 *   {{n}}   a counter over the whole process (0, 1, 2, ...): documents no cache has seen
 *   {{ip}}  a client address, `<prefix>.<x>.<y>` from the counter modulo `addresses.count`
 *           (for X-Forwarded-For, which the server honours only under TRUST_PROXY)
 * Each connection loops over `requests`, starting at its own offset (as in bench/load.js).
 *
 * Commands on standard input, one a line:
 *   mark <label>   prints {"mark": label, "atMs": ..., "counters": {...}} at once, so the caller
 *                  can count what happened between two marks (the measured window)
 *   stop           stops; the last line is {"final": true, "durationSec": ..., "counters": {...}}
 * Standard input closing stops it too, and it stops by itself after maxDurationSec, so a noise
 * process never outlives the run that started it by long.
 *
 * counters: { answered, outcomes: { "<status> <first error code, or ok>": count },
 *             errors, timeouts }: autocannon's own tally has no error codes, and a refused
 * login answers 200 with its error in the body, so the outcome comes from each response's body.
 */

const { URL } = require('node:url');
const { createInterface } = require('node:readline');
const { performance } = require('node:perf_hooks');
const autocannon = require('autocannon');

const PLACEHOLDERS = /\{\{(n|ip)\}\}/g;
const HAS_PLACEHOLDER = /\{\{(n|ip)\}\}/;

function addressOf(counter, addresses) {
  const index = (counter % addresses.count) + 1;
  return `${addresses.prefix}.${(index >> 8) & 255}.${index & 255}`;
}

async function main() {
  const config = JSON.parse(process.argv[2] || '{}');
  if (!config.url || !Array.isArray(config.requests) || config.requests.length === 0) {
    throw new Error('usage: node bench/noise.js \'{"url":...,"connections":16,"requests":[{"headers":{},"body":"..."}]}\'');
  }
  const addresses = config.addresses || { prefix: '10.0', count: 1 };
  if (!(addresses.count >= 1 && addresses.count <= 65_535)) throw new Error('addresses.count must be 1 to 65535');
  const path = new URL(config.url).pathname;
  const counters = { answered: 0, outcomes: {}, errors: 0, timeouts: 0 };
  /** Requests built from a template with placeholders so far: the value of {{n}}. */
  let filled = 0;
  const startedAt = performance.now();

  function onResponse(status, body) {
    counters.answered += 1;
    const code = /"code":"([A-Z_]+)"/.exec(body);
    const outcome = `${status} ${code ? code[1] : 'ok'}`;
    counters.outcomes[outcome] = (counters.outcomes[outcome] || 0) + 1;
  }

  const template = config.requests.map((request) => {
    const headers = { 'content-type': 'application/json', ...request.headers };
    const dynamic = HAS_PLACEHOLDER.test(request.body) || Object.values(headers).some((value) => HAS_PLACEHOLDER.test(value));
    const base = { method: 'POST', path, headers, body: request.body, onResponse };
    // A static request is built once; only a dynamic one pays for being rebuilt every time.
    if (!dynamic) return base;
    return {
      ...base,
      setupRequest(req) {
        const counter = filled;
        filled += 1;
        const fill = (text) => text.replace(PLACEHOLDERS, (_, name) => (name === 'n' ? String(counter) : addressOf(counter, addresses)));
        const filledHeaders = {};
        for (const [name, value] of Object.entries(req.headers)) filledHeaders[name] = fill(value);
        return { ...req, headers: filledHeaders, body: fill(request.body) };
      },
    };
  });
  const connections = config.connections || 16;
  const step = Math.max(1, Math.floor(template.length / connections));
  let clientIndex = 0;

  const instance = autocannon({
    url: config.url,
    connections,
    pipelining: 1,
    duration: config.maxDurationSec || 600,
    timeout: config.timeoutSec || 10,
    requests: template,
    setupClient(client) {
      const offset = (clientIndex * step) % template.length;
      clientIndex += 1;
      client.setRequests(template.slice(offset).concat(template.slice(0, offset)).map((request) => ({ ...request })));
    },
  });
  instance.on('reqError', (error) => {
    counters.errors += 1;
    if (error && error.message === 'request timed out') counters.timeouts += 1;
  });

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [command, ...rest] = line.trim().split(' ');
    if (command === 'mark') {
      process.stdout.write(`${JSON.stringify({ mark: rest.join(' '), atMs: performance.now() - startedAt, counters })}\n`);
    } else if (command === 'stop') {
      instance.stop();
    }
  });
  lines.on('close', () => instance.stop());

  await instance;
  process.stdout.write(`${JSON.stringify({ final: true, durationSec: (performance.now() - startedAt) / 1000, counters })}\n`);
  lines.close();
  process.stdin.destroy();
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : String(error)}\n`);
  process.exit(1);
});
