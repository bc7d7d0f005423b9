/**
 * WeCom's contact-change callbacks, simulated (reference B7): the URL check (`GET` with an encrypted
 * `echostr` whose plaintext must come back) and `change_contact` events POSTed as XML with an `Encrypt`
 * element. WeCom counts a push as delivered on HTTP 200 within 5 s. The crypto is the bridge's own.
 */
import { randomBytes } from "node:crypto";
import express, { type Router } from "express";
import {
  createNonce,
  decodeAesKey,
  encryptCallbackMessage,
  signCallback,
} from "../../sources/http/callback-crypto.js";
import type { SimClock } from "../common/clock.js";

/** The callback registration (URL aside) as 通讯录同步 → 设置接收事件服务器 holds it. */
export interface WeComCallbackRegistration {
  /** The Token. */
  readonly token: string;
  /** The 43-character EncodingAESKey. */
  readonly aesKey: string;
}

/** A `change_contact` event to push (ids only, as since 2022). */
export interface WeComPushEvent {
  /** `create_user`, `update_user`, `delete_user`, `create_party`, `update_party`, `delete_party`, `update_tag`. */
  readonly changeType: string;
  /** UserID (user changes). */
  readonly userId?: string;
  /** NewUserID (a rename). */
  readonly newUserId?: string;
  /** Department ids of the user (user changes). */
  readonly department?: readonly number[];
  /** Id of the department (party changes). */
  readonly partyId?: number;
  /** ParentId of the department (party changes). */
  readonly parentId?: number;
  /** TagId and the members added or removed (update_tag). */
  readonly tag?: {
    readonly tagId: number;
    readonly addUsers?: readonly string[];
    readonly delUsers?: readonly string[];
    readonly addParties?: readonly number[];
    readonly delParties?: readonly number[];
  };
}

/** Ways to make a push go wrong on purpose. */
export interface WeComPushOptions {
  /** The push's timestamp in ms (sent in seconds; default: the simulator's clock). */
  readonly timestampMs?: number;
  /** Sign with this token instead of the registered one (a forged signature). */
  readonly signWithToken?: string;
  /** Encrypt for this receiveid instead of the corp's (another corp's message). */
  readonly receiveId?: string;
}

/** What came back and whether WeCom would count the request as answered. */
export interface WeComPushResult {
  /** The HTTP status. */
  readonly status: number;
  /** Events: HTTP 200 within 5 s. URL check: HTTP 200 with the echostr plaintext. */
  readonly accepted: boolean;
  /** Why it was not accepted. */
  readonly problem?: string;
  /** How long the callback took to answer, in milliseconds. */
  readonly elapsedMs: number;
}

const REPLY_DEADLINE_MS = 5000;

/** A fresh registration (random Token and EncodingAESKey). */
export function createWeComCallbackRegistration(): WeComCallbackRegistration {
  return {
    token: randomBytes(12).toString("hex"),
    aesKey: randomBytes(32).toString("base64").slice(0, 43),
  };
}

const cdata = (value: string): string => `<![CDATA[${value.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;

/** The decrypted event XML, as WX-DOC 96302/96303 show it (ids only). */
export function weComEventXml(corpId: string, event: WeComPushEvent, createTime: number): string {
  const fields: [string, string][] = [
    ["ToUserName", cdata(corpId)],
    ["FromUserName", cdata("sys")],
    ["CreateTime", String(createTime)],
    ["MsgType", cdata("event")],
    ["Event", cdata("change_contact")],
    ["ChangeType", cdata(event.changeType)],
  ];
  if (event.userId !== undefined) fields.push(["UserID", cdata(event.userId)]);
  if (event.newUserId !== undefined) fields.push(["NewUserID", cdata(event.newUserId)]);
  if (event.department !== undefined) fields.push(["Department", cdata(event.department.join(","))]);
  if (event.partyId !== undefined) fields.push(["Id", String(event.partyId)]);
  if (event.parentId !== undefined) fields.push(["ParentId", String(event.parentId)]);
  if (event.tag !== undefined) {
    const { tagId, addUsers, delUsers, addParties, delParties } = event.tag;
    fields.push(["TagId", String(tagId)]);
    if (addUsers !== undefined) fields.push(["AddUserItems", cdata(addUsers.join(","))]);
    if (delUsers !== undefined) fields.push(["DelUserItems", cdata(delUsers.join(","))]);
    if (addParties !== undefined) fields.push(["AddPartyItems", cdata(addParties.join(","))]);
    if (delParties !== undefined) fields.push(["DelPartyItems", cdata(delParties.join(","))]);
  }
  return `<xml>${fields.map(([name, value]) => `<${name}>${value}</${name}>`).join("")}</xml>`;
}

interface Signed {
  readonly target: URL;
  readonly encrypt: string;
}

function sign(
  url: string,
  registration: WeComCallbackRegistration,
  plaintext: string,
  receiveId: string,
  timestampMs: number,
  options: WeComPushOptions,
): Signed {
  const timestamp = String(Math.floor(timestampMs / 1000));
  const nonce = createNonce();
  const encrypt = encryptCallbackMessage(
    decodeAesKey(registration.aesKey),
    plaintext,
    options.receiveId ?? receiveId,
  );
  const target = new URL(url);
  target.searchParams.set(
    "msg_signature",
    signCallback(options.signWithToken ?? registration.token, timestamp, nonce, encrypt),
  );
  target.searchParams.set("timestamp", timestamp);
  target.searchParams.set("nonce", nonce);
  return { target, encrypt };
}

async function timed(
  request: Promise<Response>,
): Promise<{ response: Response; text: string; elapsedMs: number }> {
  const started = performance.now();
  const response = await request;
  const text = await response.text();
  return { response, text, elapsedMs: performance.now() - started };
}

/** POSTs one `change_contact` event to `url` the way WeCom does. */
export async function pushWeComEvent(
  url: string,
  registration: WeComCallbackRegistration,
  corpId: string,
  event: WeComPushEvent,
  clock: Pick<SimClock, "now">,
  options: WeComPushOptions = {},
): Promise<WeComPushResult> {
  const at = options.timestampMs ?? clock.now();
  const xml = weComEventXml(corpId, event, Math.floor(at / 1000));
  const { target, encrypt } = sign(url, registration, xml, corpId, at, options);
  const body = `<xml><ToUserName>${cdata(corpId)}</ToUserName><AgentID>${cdata("")}</AgentID><Encrypt>${cdata(encrypt)}</Encrypt></xml>`;
  const { response, elapsedMs } = await timed(
    fetch(target, { method: "POST", headers: { "content-type": "text/xml" }, body }),
  );
  const base = { status: response.status, elapsedMs };
  if (response.status !== 200) return { ...base, accepted: false, problem: `HTTP ${response.status}` };
  if (elapsedMs > REPLY_DEADLINE_MS)
    return { ...base, accepted: false, problem: `answered after ${Math.round(elapsedMs)} ms` };
  return { ...base, accepted: true };
}

/** The URL check WeCom makes when the callback is saved: GET with an encrypted echostr. */
export async function verifyWeComCallbackUrl(
  url: string,
  registration: WeComCallbackRegistration,
  corpId: string,
  clock: Pick<SimClock, "now">,
  options: WeComPushOptions = {},
): Promise<WeComPushResult> {
  const echo = randomBytes(9).toString("base64url");
  const { target, encrypt } = sign(
    url,
    registration,
    echo,
    corpId,
    options.timestampMs ?? clock.now(),
    options,
  );
  target.searchParams.set("echostr", encrypt);
  const { response, text, elapsedMs } = await timed(fetch(target));
  const base = { status: response.status, elapsedMs };
  if (response.status !== 200) return { ...base, accepted: false, problem: `HTTP ${response.status}` };
  if (text !== echo) return { ...base, accepted: false, problem: "the reply is not the echostr plaintext" };
  return { ...base, accepted: true };
}

/**
 * `POST /__simulator/callbacks/push {url, event, timestampMs?}` pushes one event; `POST
 * /__simulator/callbacks/verify {url}` makes the URL check. Both answer the push result.
 */
export function weComCallbackControlRouter(
  registration: WeComCallbackRegistration,
  corpId: string,
  clock: Pick<SimClock, "now">,
): Router {
  const router = express.Router();
  router.use(express.json());
  const target = (body: Record<string, unknown>): string | undefined =>
    typeof body.url === "string" && URL.canParse(body.url) && /^https?:$/.test(new URL(body.url).protocol)
      ? body.url
      : undefined;
  const timing = (body: Record<string, unknown>): WeComPushOptions =>
    typeof body.timestampMs === "number" ? { timestampMs: body.timestampMs } : {};
  router.post("/push", async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const url = target(body);
    const event = body.event as WeComPushEvent | undefined;
    if (url === undefined || typeof event?.changeType !== "string") {
      res
        .status(400)
        .json({ error: "body must be {url, event: {changeType, userId?, partyId?, …}, timestampMs?}" });
      return;
    }
    try {
      res.json(await pushWeComEvent(url, registration, corpId, event, clock, timing(body)));
    } catch (error) {
      res.status(502).json({ error: `push failed: ${(error as Error).message}` });
    }
  });
  router.post("/verify", async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const url = target(body);
    if (url === undefined) {
      res.status(400).json({ error: "body must be {url}" });
      return;
    }
    try {
      res.json(await verifyWeComCallbackUrl(url, registration, corpId, clock, timing(body)));
    } catch (error) {
      res.status(502).json({ error: `verification failed: ${(error as Error).message}` });
    }
  });
  return router;
}
