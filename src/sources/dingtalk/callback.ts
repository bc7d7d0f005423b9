/**
 * DingTalk's HTTP event push (事件订阅, reference A8): `POST url?msg_signature=&timestamp=&nonce=` with the
 * JSON body `{"encrypt": "…"}`; the decrypted message is JSON naming an `EventType` and ids only. The reply
 * must come within 1500 ms and carry an encrypted "success".
 */
import type { CallbackEvent } from "../http/callback-event.js";
import { createNonce, encryptCallbackMessage, signCallback } from "../http/callback-crypto.js";

/** The signed parts of a DingTalk push. */
export interface DingTalkEnvelope {
  /** `msg_signature` (the official demo) or `signature` (the overview's example). */
  readonly signature: string;
  /** `timestamp` as sent. */
  readonly timestamp: string;
  /** `nonce` as sent. */
  readonly nonce: string;
  /** The base64 ciphertext from the body. */
  readonly encrypt: string;
}

/** The reply body DingTalk expects (an encrypted "success"). */
export interface DingTalkCallbackReply {
  readonly msg_signature: string;
  readonly timeStamp: string;
  readonly nonce: string;
  readonly encrypt: string;
}

const USER_EVENTS = new Set([
  "user_add_org",
  "user_modify_org",
  "user_leave_org",
  "user_active_org",
  "org_admin_add",
  "org_admin_remove",
  // Role membership (员工角色信息发生变更): roles are read as groups, so the people named are re-read.
  "label_user_change",
]);
const DEPARTMENT_EVENTS = new Set(["org_dept_create", "org_dept_modify", "org_dept_remove"]);

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined;

/** The signed parts of a push, or null when one is missing (query values repeated count as missing). */
export function readDingTalkEnvelope(query: Record<string, unknown>, body: string): DingTalkEnvelope | null {
  const signature = text(query.msg_signature) ?? text(query.signature);
  const timestamp = text(query.timestamp);
  const nonce = text(query.nonce);
  let encrypt: string | undefined;
  try {
    encrypt = text((JSON.parse(body) as { encrypt?: unknown } | null)?.encrypt);
  } catch {
    return null;
  }
  if (signature === undefined || timestamp === undefined || nonce === undefined || encrypt === undefined)
    return null;
  return { signature, timestamp, nonce, encrypt };
}

/** Collects ids from the first of `keys` present on `record` (arrays of strings or numbers, or one value). */
function ids(record: Record<string, unknown>, keys: readonly string[]): string[] {
  for (const key of keys) {
    const value = record[key];
    const list = Array.isArray(value) ? (value as unknown[]) : value === undefined ? [] : [value];
    const found = list
      .filter((v): v is string | number => typeof v === "string" || typeof v === "number")
      .map(String)
      .filter((v) => v.length > 0);
    if (found.length > 0) return found;
  }
  return [];
}

/**
 * The event of a decrypted message, or null when it is not a DingTalk event. Both push shapes are read:
 * `{"EventType","UserId":[…]}` (HTTP push, legacy) and `{"eventType","data":{"userId":[…]}}` (the newer one).
 */
export function parseDingTalkEvent(message: string): CallbackEvent | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
  const top = parsed as Record<string, unknown>;
  const eventType = text(top.EventType) ?? text(top.eventType);
  if (eventType === undefined) return null;
  const data =
    top.data !== null && typeof top.data === "object" && !Array.isArray(top.data)
      ? { ...(top.data as Record<string, unknown>), ...top }
      : top;
  const userIds = ids(data, ["UserId", "userId", "UserIdList", "userIdList"]);
  const departmentIds = ids(data, ["DeptId", "deptId", "DeptIdList", "deptIdList"]);
  if (eventType === "check_url") return { kind: "check", eventType, userIds: [], departmentIds: [] };
  if (USER_EVENTS.has(eventType)) return { kind: "users", eventType, userIds, departmentIds: [] };
  if (DEPARTMENT_EVENTS.has(eventType)) return { kind: "departments", eventType, userIds: [], departmentIds };
  return { kind: "other", eventType, userIds: [], departmentIds: [] };
}

/** The encrypted "success" reply, signed with the registration's token, for `ownerKey`. */
export function dingTalkSuccessReply(
  token: string,
  key: Buffer,
  ownerKey: string,
  now: Date,
): DingTalkCallbackReply {
  const timeStamp = String(now.getTime());
  const nonce = createNonce();
  const encrypt = encryptCallbackMessage(key, "success", ownerKey);
  return { msg_signature: signCallback(token, timeStamp, nonce, encrypt), timeStamp, nonce, encrypt };
}
