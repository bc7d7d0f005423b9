import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Client, NoSuchObjectError, type Entry } from "ldapts";
import { SourceReadError } from "../builder.js";
import type { LdapConfig } from "./config.js";
import type { LdapEntry } from "./entry.js";
import { ldapReadError } from "./errors.js";

/** One search: where, what, which attributes. */
export interface SearchSpec {
  /** Search base. */
  readonly base: string;
  /** RFC 4515 filter, values already escaped. */
  readonly filter: string;
  /** Attributes to return. */
  readonly attributes: readonly string[];
  /** Scope; default subtree. */
  readonly scope?: "base" | "one" | "sub";
  /** Phrase for error messages: `reading users`. */
  readonly what: string;
}

/** One page of a paged search. */
export interface SearchPage {
  readonly entries: LdapEntry[];
  /** Continuation references the server returned; never followed. */
  readonly references: string[];
}

/**
 * A bound LDAP connection of one source. Every failure leaves here as a {@link SourceReadError} whose
 * message names the source, the server and what was being done.
 */
export class LdapConnection {
  private constructor(
    private readonly client: Client,
    private readonly sourceId: string,
    private readonly config: LdapConfig,
    private readonly bufferAttributes: readonly string[],
  ) {}

  /** Connects (TLS or StartTLS with certificate verification) and binds as the service account. */
  static async open(
    sourceId: string,
    config: LdapConfig,
    bufferAttributes: readonly string[],
  ): Promise<LdapConnection> {
    const context = { sourceId, url: config.url };
    let tlsOptions: ConnectionOptions;
    try {
      tlsOptions = await tlsOptionsFor(config);
    } catch (error) {
      throw new SourceReadError(
        {
          code: "TLS_FAILED",
          message: `source ${sourceId} (${config.url}): cannot read caFile ${config.caFile}: ${(error as Error).message}`,
        },
        { cause: error },
      );
    }
    const client = new Client({
      url: config.url,
      connectTimeout: config.timeouts.connectMs,
      timeout: config.timeouts.operationMs,
      // ldapts speaks TLS from the first byte whenever tlsOptions are given, so only ldaps:// gets them.
      ...(config.url.toLowerCase().startsWith("ldaps://") ? { tlsOptions } : {}),
      // Search bases come from the config and member values from the server; both are passed as given.
      strictDN: false,
    });
    const connection = new LdapConnection(client, sourceId, config, bufferAttributes);
    try {
      if (config.startTls) {
        try {
          await client.startTLS({ ...tlsOptions });
        } catch (error) {
          throw ldapReadError(error, { ...context, action: "StartTLS (RFC 4511 §4.14)" });
        }
      }
      try {
        await client.bind(config.bindDn, config.bindPassword);
      } catch (error) {
        throw ldapReadError(error, { ...context, action: `binding as ${config.bindDn}` });
      }
    } catch (error) {
      await connection.close();
      throw error;
    }
    return connection;
  }

  /**
   * A paged search (RFC 2696, control 1.2.840.113556.1.4.319), one page at a time. The paged-results
   * control is always sent: Samba and OpenLDAP only page when asked, and AD caps unpaged results.
   */
  async *pages(spec: SearchSpec, pageSize: number): AsyncGenerator<SearchPage> {
    const pages = this.client.searchPaginated(spec.base, {
      scope: spec.scope ?? "sub",
      filter: spec.filter,
      attributes: [...spec.attributes],
      explicitBufferAttributes: this.bufferNames(),
      paged: { pageSize },
    });
    const fail = (error: unknown, page: number) =>
      ldapReadError(error, {
        sourceId: this.sourceId,
        url: this.config.url,
        action: `${spec.what} (page ${page})`,
        where: spec.base,
      });
    let n = 1;
    let pending = pages.next();
    while (true) {
      let next: IteratorResult<{ searchEntries: Entry[]; searchReferences: string[] }>;
      try {
        next = await pending;
      } catch (error) {
        throw fail(error, n);
      }
      if (next.done === true) return;
      // Ask for the next page before handing this one out, so the server works while we do.
      pending = pages.next();
      pending.catch(() => undefined);
      n++;
      yield { entries: next.value.searchEntries, references: next.value.searchReferences };
    }
  }

  /** One entry by DN, or null when it does not exist or does not match `filter`. */
  async entry(
    dn: string,
    attributes: readonly string[],
    what: string,
    filter = "(objectClass=*)",
  ): Promise<LdapEntry | null> {
    try {
      const result = await this.client.search(dn, {
        scope: "base",
        filter,
        attributes: [...attributes],
        explicitBufferAttributes: this.bufferNames(),
      });
      const found = result.searchEntries[0];
      return found ?? null;
    } catch (error) {
      if (error instanceof NoSuchObjectError) return null;
      throw ldapReadError(error, { sourceId: this.sourceId, url: this.config.url, action: what, where: dn });
    }
  }

  /** The root DSE (RFC 4512 §5.1). */
  async rootDse(attributes: readonly string[]): Promise<LdapEntry> {
    const entry = await this.entry("", attributes, "reading the root DSE");
    if (entry === null) {
      throw new SourceReadError({
        code: "MALFORMED_RESPONSE",
        message: `source ${this.sourceId} (${this.config.url}): the server returned no root DSE`,
      });
    }
    return entry;
  }

  async close(): Promise<void> {
    await this.client.unbind().catch(() => undefined);
  }

  // ldapts matches these names case-sensitively against what the server returns.
  private bufferNames(): string[] {
    return this.bufferAttributes.flatMap((name) => [name, name.toLowerCase()]);
  }
}

async function tlsOptionsFor(config: LdapConfig): Promise<ConnectionOptions> {
  const host = new URL(config.url).hostname.replace(/^\[|\]$/g, "");
  return {
    // Never switched off: certificate and host name are always verified.
    rejectUnauthorized: true,
    host,
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(config.caFile === undefined ? {} : { ca: await readFile(config.caFile) }),
  };
}
