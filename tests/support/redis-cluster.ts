import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { freePort } from './local-resources';

/*
 * A real Redis Cluster from the machine's `redis-server` (Debian's package; `.ci/run` installs it
 * when missing): `masters` masters with one replica each, on free ports, in a temporary folder,
 * nothing kept on disk. A one-second node timeout makes a failover take a few seconds; full
 * coverage is not required, as the README advises, so a failover pauses only the failed slots.
 */

export const NODE_TIMEOUT_MS = 1_000;

export interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export interface RunningRedisCluster {
  nodes: ClusterNode[];
  /** REDIS_CLUSTER_NODES for the server: every node's 127.0.0.1:port. */
  seeds: string;
  /** A plain connection to one node (not cluster-aware): CLUSTER commands, or keys it owns. */
  connect(port: number): Redis;
  /** The port of the master that owns `slot`, as a live node sees it. */
  ownerOf(slot: number): Promise<number>;
  keySlot(key: string): Promise<number>;
  /** SIGKILL: the node is gone at once, as in a crash. */
  kill(port: number): void;
  log(port: number): string;
  stop(): Promise<void>;
}

const run = promisify(execFile);

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not listen on ${port}: ${log()}`);
}

export async function startRedisCluster(masters = 3): Promise<RunningRedisCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-redis-cluster-'));
  const nodes: ClusterNode[] = [];
  const logs = new Map<number, string>();
  const clients = new Set<Redis>();
  const live = () => nodes.filter((node) => node.process.exitCode === null && node.process.signalCode === null);

  const cluster: RunningRedisCluster = {
    nodes,
    get seeds() {
      return nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
    },
    connect(port) {
      const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null });
      client.on('error', () => undefined);
      clients.add(client);
      // Disconnecting a closed client again would leave a 2 s timer behind (Jest waits for it).
      client.once('end', () => clients.delete(client));
      return client;
    },
    async ownerOf(slot) {
      const [node] = live();
      if (!node) throw new Error('no live node');
      const client = cluster.connect(node.port);
      try {
        const ranges = await client.cluster('SLOTS');
        const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
        if (!master) throw new Error(`no node owns slot ${slot}`);
        return master[1];
      } finally {
        client.disconnect();
      }
    },
    async keySlot(key) {
      const [node] = live();
      const client = cluster.connect(node!.port);
      try {
        return Number(await client.cluster('KEYSLOT', key));
      } finally {
        client.disconnect();
      }
    },
    kill(port) {
      nodes.find((node) => node.port === port)?.process.kill('SIGKILL');
    },
    log: (port) => logs.get(port) ?? '',
    async stop() {
      for (const client of clients) client.disconnect();
      await Promise.all(
        nodes.map(
          (node) =>
            new Promise<void>((resolve) => {
              if (node.process.exitCode !== null || node.process.signalCode !== null) return resolve();
              node.process.once('exit', () => resolve());
              node.process.kill('SIGKILL');
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (let i = 0; i < masters * 2; i += 1) {
      const port = await freePort();
      // The cluster bus would default to port + 10000, which may be taken or past 65535.
      const busPort = await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--cluster-port', String(busPort),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
          // Slots of a failed master refuse (CLUSTERDOWN) until its replica takes over; with the
          // default `yes`, every other slot would refuse too, all tenants at once.
          '--cluster-require-full-coverage', 'no',
          '--save', '',
          '--appendonly', 'no',
          // A replica's first sync would otherwise wait 5 s (the default delay, for more replicas
          // to join one transfer): every cluster start waited ~4 s longer for its replicas.
          '--repl-diskless-sync-delay', '0',
          '--dir', dir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      logs.set(port, '');
      const append = (chunk: Buffer) => logs.set(port, (logs.get(port)! + chunk.toString()).slice(-20_000));
      child.stdout?.on('data', append);
      child.stderr?.on('data', append);
      nodes.push({ port, process: child });
    }
    await Promise.all(nodes.map((node) => waitForPort(node.port, node.process, () => cluster.log(node.port))));
    // The first `masters` addresses become masters, the others their replicas.
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes']);
    await waitForHealthy(cluster, masters);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** Every node says cluster_state:ok and sees `masters` masters, each with a replica in sync. */
async function waitForHealthy(cluster: RunningRedisCluster, masters: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = '';
  while (Date.now() < deadline) {
    const states = await Promise.all(
      cluster.nodes.map(async (node) => {
        const client = cluster.connect(node.port);
        try {
          const info = String(await client.cluster('INFO'));
          const replication = String(await client.info('replication'));
          return { ok: /cluster_state:ok/.test(info), role: /role:(\w+)/.exec(replication)?.[1], synced: /master_link_status:up/.test(replication) };
        } catch (error) {
          return { ok: false, role: undefined, synced: false, error: String(error) };
        } finally {
          client.disconnect();
        }
      }),
    );
    last = JSON.stringify(states);
    const replicas = states.filter((state) => state.role === 'slave');
    if (states.every((state) => state.ok) && replicas.length === masters && replicas.every((state) => state.synced)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`redis cluster not healthy: ${last}`);
}
