import type pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';

/** pg client settings from a postgres:// URL, so single fields (user, database) can be replaced. */
export function clientConfigFromUrl(url: string): pg.ClientConfig {
  return parseIntoClientConfig(url) as pg.ClientConfig;
}

export function urlWithDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export function databaseNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** The URL without its password, for logs and start-up messages. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
