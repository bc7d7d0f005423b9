/**
 * DingTalk's HTTP event push, simulated (reference A8): a signed, encrypted contact-change event POSTed to a
 * callback URL, and the check DingTalk makes of the reply (an encrypted "success" within 1500 ms). The
 * crypto is the bridge's own (`sources/http/callback-crypto.ts`): the vectors in its unit tests tie it to
 * the vendors' demos.
 */
import { randomBytes } from "node:crypto";
import express, { type Router } from "express";
import {
  createNonce,
  decodeAesKey,
  decryptCallbackMessage,
  encryptCallbackMessage,
  signCallback,
  verifyCallbackSignature,
} from "../../sources/http/callback-crypto.js";
import type { SimClock } from "../common/clock.js";

/** The callback registration (URL aside) as the app's 事件订阅 page holds it; the shape of `callback:`. */
export interface DingTalkCallbackRegistration {
  /** The signature token. */
  readonly token: string;
  /** The 43-character aes_key. */
  readonly aesKey: string;
  /** Whose events: the app's AppKey (registration on the app's page). */
  readonly ownerKey: string;
}

/** A contact-change event to push (ids only, as DingTalk sends). */
export interface DingTalkPushEvent {
  /** `user_modify_org`, `org_dept_create`, `check_url`, … */
  readonly eventType: string;
  /** Users the event names. */
  readonly userIds?: readonly string[];
  /** Departments the event names. */
  readonly deptIds?: readonly number[];
}

/** Ways to make a push go wrong on purpose. */
export interface DingTalkPushOptions {
  /** The push's `timestamp` in ms (default: the simulator's clock); an old one tests replay protection. */
  readonly timestampMs?: number;
  /** Sign with this token instead of the registered one (a forged signature). */
  readonly signWithToken?: string;
  /** Encrypt for this owner instead of the registered one (another organisation's message). */
  readonly ownerKey?: string;
}

/** What came back and whether DingTalk would count the push as delivered. */
export interface DingTalkPushResult {
  /** The HTTP status. */
  readonly status: number;
  /** True when the reply is a correctly signed, encrypted "success" for our owner within 1500 ms. */
  readonly accepted: boolean;
  /** Why it was not accepted. */
  readonly problem?: string;
  /** How long the callback took to answer, in milliseconds. */
  readonly elapsedMs: number;
}

const REPLY_DEADLINE_MS = 1500;

/** A fresh registration for the app `appKey` (random token and aes_key). */
export function createDingTalkCallbackRegistration(appKey: string): DingTalkCallbackRegistration {
  return {
    token: randomBytes(12).toString("hex"),
    // 32 random bytes in base64 are 43 characters and one "=": exactly an aes_key.
    aesKey: randomBytes(32).toString("base64").slice(0, 43),
    ownerKey: appKey,
  };
}

/** POSTs one event to `url` the way DingTalk does and checks the reply the way DingTalk does. */
export async function pushDingTalkEvent(
  url: string,
  registration: DingTalkCallbackRegistration,
  event: DingTalkPushEvent,
  clock: Pick<SimClock, "now">,
  options: DingTalkPushOptions = {},
): Promise<DingTalkPushResult> {
  const key = decodeAesKey(registration.aesKey);
  const timestamp = String(options.timestampMs ?? clock.now());
  const nonce = createNonce();
  const payload: Record<string, unknown> = {
    EventType: event.eventType,
    TimeStamp: timestamp,
    CorpId: registration.ownerKey,
  };
  if (event.userIds !== undefined) payload.UserId = event.userIds;
  if (event.deptIds !== undefined) payload.DeptId = event.deptIds;
  const encrypt = encryptCallbackMessage(
    key,
    JSON.stringify(payload),
    options.ownerKey ?? registration.ownerKey,
  );
  const signature = signCallback(options.signWithToken ?? registration.token, timestamp, nonce, encrypt);
  const target = new URL(url);
  // The overview's example calls it `signature`, the demo reads `msg_signature`: send both (reference A8).
  target.searchParams.set("msg_signature", signature);
  target.searchParams.set("signature", signature);
  target.searchParams.set("timestamp", timestamp);
  target.searchParams.set("nonce", nonce);
  const started = performance.now();
  const response = await fetch(target, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ encrypt }),
  });
  const text = await response.text();
  const elapsedMs = performance.now() - started;
  const result = (accepted: boolean, problem?: string): DingTalkPushResult => ({
    status: response.status,
    accepted,
    elapsedMs,
    ...(problem === undefined ? {} : { problem }),
  });
  if (response.status !== 200) return result(false, `HTTP ${response.status}`);
  if (elapsedMs > REPLY_DEADLINE_MS) return result(false, `answered after ${Math.round(elapsedMs)} ms`);
  return result(...checkReply(text, registration, key));
}

function checkReply(
  text: string,
  registration: DingTalkCallbackRegistration,
  key: Buffer,
): [boolean, string?] {
  let reply: Record<string, unknown>;
  try {
    reply = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return [false, "reply is not JSON"];
  }
  const { msg_signature, timeStamp, nonce, encrypt } = reply;
  if (
    typeof msg_signature !== "string" ||
    typeof timeStamp !== "string" ||
    typeof nonce !== "string" ||
    typeof encrypt !== "string"
  )
    return [false, "reply lacks msg_signature, timeStamp, nonce or encrypt"];
  if (!verifyCallbackSignature(registration.token, timeStamp, nonce, encrypt, msg_signature))
    return [false, "reply signature is wrong"];
  const opened = decryptCallbackMessage(key, encrypt);
  if (!opened.ok) return [false, "reply does not decrypt"];
  if (opened.ownerKey !== registration.ownerKey) return [false, "reply is for another owner"];
  if (opened.message !== "success") return [false, `reply says ${JSON.stringify(opened.message)}`];
  return [true];
}

/**
 * `POST /__simulator/callbacks/push {url, eventType, userIds?, deptIds?, timestampMs?}`: pushes one event
 * with the simulator's registration and answers the push result (for the demo and manual tries).
 */
export function dingTalkCallbackControlRouter(
  registration: DingTalkCallbackRegistration,
  clock: Pick<SimClock, "now">,
): Router {
  const router = express.Router();
  router.use(express.json());
  router.post("/push", async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { url, eventType, userIds, deptIds, timestampMs } = body;
    const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");
    const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));
    if (
      typeof url !== "string" ||
      !URL.canParse(url) ||
      !/^https?:$/.test(new URL(url).protocol) ||
      typeof eventType !== "string" ||
      (userIds !== undefined && !strings(userIds)) ||
      (deptIds !== undefined && !numbers(deptIds)) ||
      (timestampMs !== undefined && typeof timestampMs !== "number")
    ) {
      res.status(400).json({
        error: "body must be {url, eventType, userIds?: string[], deptIds?: number[], timestampMs?: number}",
      });
      return;
    }
    try {
      const event = {
        eventType,
        ...(userIds === undefined ? {} : { userIds }),
        ...(deptIds === undefined ? {} : { deptIds }),
      };
      res.json(
        await pushDingTalkEvent(
          url,
          registration,
          event,
          clock,
          timestampMs === undefined ? {} : { timestampMs },
        ),
      );
    } catch (error) {
      res.status(502).json({ error: `push failed: ${(error as Error).message}` });
    }
  });
  return router;
}
