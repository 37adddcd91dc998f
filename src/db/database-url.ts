/**
 * libpq's multi-host connection URLs, which node-pg does not read
 * (brianc/node-postgres#1470): `postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`,
 * the form `pg_autoctl show uri` prints and Patroni users know. This file
 * only parses; primary.ts finds the writable host.
 */

/** DatabaseHost is one host of a DATABASE_URL. */
export interface DatabaseHost {
  readonly host: string;
  readonly port: number;
}

/** HostList is a DATABASE_URL that names several hosts, or asks for a writable one. */
export interface HostList {
  readonly hosts: readonly DatabaseHost[];
  /** writable: target_session_attrs=read-write (or primary): only a host that takes writes will do; else any that answers. */
  readonly writable: boolean;
  /** urlFor is the single-host URL of one host: everything else (user, database, sslmode, ...) as given. */
  urlFor(host: DatabaseHost): string;
}

const shape = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)([^?#]*)(\?[^#]*)?$/;

const sessionAttributes: Record<string, boolean> = { "read-write": true, primary: true, any: false };

function parseHost(text: string): DatabaseHost {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  if (m === null) throw new Error("DATABASE_URL has an empty or malformed host in its host list");
  const port = m[2] === undefined ? 5432 : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error("DATABASE_URL has a port out of range in its host list");
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port };
}

/**
 * parseHostList reads a DATABASE_URL with several comma-separated hosts or a
 * `target_session_attrs`; a plain single-host URL gives undefined (it is used
 * as it is). Errors never echo the URL: it may hold a password.
 */
export function parseHostList(url: string): HostList | undefined {
  const m = shape.exec(url);
  if (m === null) return undefined;
  const [, scheme, userinfo = "", hostText = "", path = "", query = ""] = m;
  const params = new URLSearchParams(query.slice(1));
  const attributes = params.get("target_session_attrs");
  if (!hostText.includes(",") && attributes === null) return undefined;
  if (attributes !== null && !(attributes in sessionAttributes)) {
    throw new Error(
      `DATABASE_URL: target_session_attrs=${attributes} is not supported: use read-write (or primary), or any; reads go to standbys through DATABASE_REPLICA_URLS`,
    );
  }
  params.delete("target_session_attrs");
  const rest = params.size > 0 ? `?${params}` : "";
  const hosts = hostText.split(",").map(parseHost);
  const bracketed = (host: string) => (host.includes(":") ? `[${host}]` : host);
  return {
    hosts,
    // Without target_session_attrs libpq takes the first host that answers ("any").
    writable: attributes === null ? false : sessionAttributes[attributes]!,
    urlFor: (h) => `${scheme}${userinfo}${bracketed(h.host)}:${h.port}${path}${rest}`,
  };
}

/** hostName is host:port, for logs. */
export function hostName(h: DatabaseHost): string {
  return `${h.host}:${h.port}`;
}
