import type {
  Completeness,
  DirectorySnapshot,
  IncompleteCode,
  IncompleteReason,
  ReadCursor,
  SourceDepartment,
  SourceGroup,
  SourcePerson,
  UnavailableField,
} from "./snapshot.js";
import type { ReadMode, SourceContext } from "./source.js";

/** A problem that ends (part of) a read; readers throw it and the builder records it as a reason. */
export class SourceReadError extends Error {
  override readonly name = "SourceReadError";
  readonly reason: IncompleteReason;

  constructor(reason: IncompleteReason, options?: { cause?: unknown }) {
    super(reason.message, options);
    this.reason = reason;
  }
}

/** True for errors thrown by readers to report a source problem. */
export function isSourceReadError(error: unknown): error is SourceReadError {
  return error instanceof SourceReadError;
}

/**
 * Parts failing for the source's own reasons (server errors, unreachable, still throttled after waiting)
 * after which a reader stops calling: a source failing this often is failing everywhere, and asking it for
 * thousands more pages, each retried, only hammers it. The snapshot is incomplete anyway. Failures that
 * concern one part only (a department outside the app's scope, a malformed page) do not count.
 */
export const FAILURES_BEFORE_GIVING_UP = 5;
const SOURCE_FAILURES: ReadonlySet<IncompleteCode> = new Set(["SERVER_ERROR", "UNREACHABLE", "RATE_LIMITED"]);

/**
 * Collects one read into a {@link DirectorySnapshot}. People are kept once per subject (a person met in
 * several departments is merged); any recorded failure makes the result incomplete, and an incomplete
 * read carries no cursor, so the next incremental read cannot skip what this one missed.
 */
export class SnapshotBuilder {
  private readonly people = new Map<string, SourcePerson>();
  private readonly departments = new Map<string, SourceDepartment>();
  private readonly groups = new Map<string, SourceGroup>();
  private readonly reasons: IncompleteReason[] = [];
  private readonly unavailable = new Map<string, UnavailableField>();
  private readonly warnings: string[] = [];
  private readonly startedAt: string;
  private gaveUp = false;

  constructor(
    private readonly context: Pick<SourceContext, "sourceId" | "now">,
    private readonly sourceType: string,
    private readonly mode: ReadMode["mode"],
  ) {
    this.startedAt = context.now().toISOString();
  }

  /** Adds a person, merging department memberships and managers with an earlier sighting. */
  addPerson(person: SourcePerson): void {
    const seen = this.people.get(person.subject);
    if (seen === undefined) {
      this.people.set(person.subject, person);
      return;
    }
    const departments = [...seen.departments];
    for (const membership of person.departments) {
      const index = departments.findIndex((d) => d.departmentId === membership.departmentId);
      if (index < 0) departments.push(membership);
      else {
        const known = departments[index]!;
        departments[index] = {
          departmentId: known.departmentId,
          main: known.main || membership.main,
          leader: known.leader || membership.leader,
        };
      }
    }
    const managers = [...new Set([...seen.managers, ...person.managers])];
    this.people.set(person.subject, { ...seen, ...person, departments, managers });
  }

  /** The person recorded under a subject, if any. */
  getPerson(subject: string): SourcePerson | undefined {
    return this.people.get(subject);
  }

  /** Number of distinct people so far. */
  get peopleCount(): number {
    return this.people.size;
  }

  addDepartment(department: SourceDepartment): void {
    this.departments.set(department.id, department);
  }

  addGroup(group: SourceGroup): void {
    this.groups.set(group.id, group);
  }

  /** Records why the read is not complete. */
  fail(reason: IncompleteReason): void {
    this.reasons.push(reason);
  }

  /** True once any failure was recorded. */
  get failed(): boolean {
    return this.reasons.length > 0;
  }

  /**
   * True when the read should stop calling because {@link FAILURES_BEFORE_GIVING_UP} parts failed for the
   * source's own reasons; the
   * first time, records a GAVE_UP reason saying that the rest was not read.
   */
  giveUpIfFailing(): boolean {
    if (this.gaveUp) return true;
    const failures = this.reasons.filter((r) => SOURCE_FAILURES.has(r.code)).length;
    if (failures < FAILURES_BEFORE_GIVING_UP) return false;
    this.gaveUp = true;
    this.reasons.push({
      code: "GAVE_UP",
      message:
        `${this.context.sourceId}: stopped reading after ${failures} failed requests; ` +
        "the rest of the directory was not read (fix the causes above and read again)",
    });
    return true;
  }

  /** Records a field the source cannot provide for anyone (first reason wins). */
  markUnavailable(field: string, reason: string): void {
    if (!this.unavailable.has(field)) this.unavailable.set(field, { field, reason });
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** The snapshot; the cursor is kept only when nothing failed. */
  finish(cursor?: ReadCursor): DirectorySnapshot {
    const completeness: Completeness =
      this.reasons.length === 0 ? { complete: true } : { complete: false, reasons: [...this.reasons] };
    const sort = <T>(map: Map<string, T>): T[] =>
      [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
    return {
      sourceId: this.context.sourceId,
      sourceType: this.sourceType,
      mode: this.mode,
      startedAt: this.startedAt,
      finishedAt: this.context.now().toISOString(),
      people: sort(this.people),
      departments: sort(this.departments),
      groups: sort(this.groups),
      unavailableFields: [...this.unavailable.values()],
      completeness,
      ...(completeness.complete && cursor !== undefined ? { cursor } : {}),
      warnings: [...this.warnings],
    };
  }
}
