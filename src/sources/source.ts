import type { z } from "zod";
import type { SignInConnector, SignInContext } from "./sign-in.js";
import type { DirectorySnapshot, IncompleteReason, ReadCursor, UnavailableField } from "./snapshot.js";

/** How to read: everything, or only what changed since a cursor from an earlier read. */
export type ReadMode =
  { readonly mode: "full" } | { readonly mode: "incremental"; readonly cursor: ReadCursor };

/** Progress of a long read, for a progress bar. */
export interface ReadProgress {
  /** What is being read (departments, people, groups). */
  readonly phase: string;
  /** Items done in this phase. */
  readonly done: number;
  /** Items expected in this phase, when known. */
  readonly total?: number;
}

/** Options of one read. */
export type ReadOptions = ReadMode & {
  /** Called now and then during the read. */
  readonly onProgress?: (progress: ReadProgress) => void;
  /** Aborts the read; the snapshot comes back incomplete with reason ABORTED. */
  readonly signal?: AbortSignal;
};

/** What `idbridge sources test` reports: connected and authenticated or not, what one page held. */
export interface SourceTestReport {
  /** True when the source answered, accepted the credentials and one page could be read. */
  readonly ok: boolean;
  /** Facts for people: server, account, counts seen on the first page. */
  readonly found: readonly string[];
  /** Why it is not ok, or what is wrong even though it connected. */
  readonly problems: readonly IncompleteReason[];
  /** Fields the source will not provide with this configuration. */
  readonly unavailableFields: readonly UnavailableField[];
}

/**
 * Reads one directory. Problems at the source (wrong secret, unreachable host, missing permission, a bad
 * page) never throw: they come back as an incomplete snapshot or a failed test report that names the
 * source and the cause. Only caller mistakes throw.
 */
export interface DirectoryReader {
  /** Connects, authenticates and reads one page. */
  test(): Promise<SourceTestReport>;
  /** Reads a snapshot. */
  read(options?: ReadOptions): Promise<DirectorySnapshot>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** What a source gets from idbridge besides its own config. */
export interface SourceContext {
  /** Source id from the config, used in every message. */
  readonly sourceId: string;
  /** Wall clock; tests pin it. */
  readonly now: () => Date;
  /** Waits (backoff); tests may shorten it. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** One source type: its config schema and what it can open. */
export interface SourceModule<C> {
  /** The `type` value in the config. */
  readonly type: string;
  /** Validates `sources[].config` for this type, with defaults and descriptions. */
  readonly configSchema: z.ZodType<C>;
  /** Opens a directory reader, for types that have a directory. */
  readonly openDirectory?: (context: SourceContext, config: C) => DirectoryReader;
  /** Opens the sign-in connector, for types people can sign in with. */
  readonly openSignIn?: (context: SignInContext, config: C) => SignInConnector;
}
