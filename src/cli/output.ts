import { createWriteStream, renameSync, rmSync, type WriteStream } from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { AppError, describeError } from "../domain/errors.js";

/** Where a command writes: a file that appears only when complete, or stdout. */
export interface Output {
  stream: Writable;
  /** Flushes and, for a file, moves it into place. */
  commit(): Promise<void>;
  /** Removes a partial file. */
  abort(): void;
}

/** Opens `path` for writing through a temporary file (so a failure never leaves half a file), or stdout. */
export async function openOutput(path: string | undefined): Promise<Output> {
  if (path === undefined || path === "-") {
    return { stream: process.stdout, commit: async () => undefined, abort: () => undefined };
  }
  const tmp = `${path}.partial-${process.pid}`;
  const stream: WriteStream = createWriteStream(tmp, { flags: "wx", mode: 0o600 });
  try {
    await once(stream, "open");
  } catch (err) {
    throw new AppError("INPUT_INVALID", `cannot write ${path}: ${describeError(err)}`, { cause: err });
  }
  let failure: unknown = null;
  stream.on("error", (err) => {
    failure = err;
  });
  return {
    stream,
    async commit() {
      stream.end();
      try {
        // Rejects with the stream's error even when it already closed (once("close") would wait for ever).
        await finished(stream);
      } catch (err) {
        failure ??= err;
      }
      if (failure) {
        rmSync(tmp, { force: true });
        throw new AppError("INPUT_INVALID", `cannot write ${path}: ${describeError(failure)}`, {
          cause: failure,
        });
      }
      renameSync(tmp, path);
    },
    abort() {
      stream.destroy();
      rmSync(tmp, { force: true });
    },
  };
}
