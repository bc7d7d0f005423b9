/**
 * Contact-change callbacks from DingTalk and WeCom at `/callbacks/<source id>`. Each request goes through
 * the same steps: read the envelope, check the signature, check the timestamp, decrypt, check the owner,
 * parse the event; then the vendor's reply goes out first and the sync is told afterwards (DingTalk allows
 * 1500 ms, WeCom 5 s). A refused request gets a bare status and one `callback.refused` audit entry.
 */
import express, { type Request, type Response, type Router } from "express";
import pino, { type Logger } from "pino";
import type { AuditEvent } from "../audit/chain.js";
import {
  dingTalkSuccessReply,
  parseDingTalkEvent,
  readDingTalkEnvelope,
  type DingTalkEnvelope,
} from "../sources/dingtalk/callback.js";
import {
  decodeAesKey,
  decryptCallbackMessage,
  equalsConstantTime,
  parseCallbackTimestamp,
  verifyCallbackSignature,
} from "../sources/http/callback-crypto.js";
import type { CallbackEvent } from "../sources/http/callback-event.js";
import type { SourceConfigEntry } from "../sources/registry.js";
import {
  parseWeComEvent,
  readWeComEnvelope,
  readWeComVerification,
  type WeComEnvelope,
} from "../sources/wecom/callback.js";

/** What the sync is told after a verified event. */
export interface ContactChange {
  /** The source entry's id. */
  readonly sourceId: string;
  /** Re-read these users, these departments, or nothing (`check`: the vendor verified the URL). */
  readonly kind: "users" | "departments" | "check";
  /** User ids named by the event. */
  readonly userIds: readonly string[];
  /** Department ids named by the event. */
  readonly departmentIds: readonly string[];
  /** The vendor's event name (`user_modify_org`, `update_user`, `check_url`, `verify_url`). */
  readonly eventType: string;
  /** When the request arrived (the injected clock). */
  readonly receivedAt: Date;
}

/** Why a callback was refused: the `reason` of a `callback.refused` audit entry (stable). */
export type CallbackRefusal =
  | "bad_signature"
  | "stale_timestamp"
  | "undecryptable"
  | "wrong_owner"
  | "malformed_request"
  | "malformed_event"
  | "body_too_large";

/** Dependencies of {@link callbackRouter}. */
export interface CallbackRouterOptions {
  /** Configured source entries; dingtalk and wecom entries with a `callback` get an endpoint. */
  readonly sources: readonly SourceConfigEntry[];
  /** Called after the reply went out; not awaited by the request, a rejection is logged. */
  readonly onContactChange: (change: ContactChange) => void | Promise<void>;
  /** Writes an audit entry (only refusals are audited). */
  readonly audit: (event: AuditEvent) => Promise<void>;
  /** The clock (default: the system clock). */
  readonly now?: () => Date;
  /** Oldest (and furthest in the future) a request's timestamp may be; default 5 minutes. */
  readonly maxAgeMs?: number;
  /** Logger when the app has no pino-http request logger (tests). */
  readonly logger?: Logger;
  /** Refusals audited per source and minute at most; further ones are only logged. Default 60. */
  readonly maxRefusalAuditsPerMinute?: number;
}

const BODY_LIMIT = "64kb";
const DEFAULT_MAX_AGE_MS = 5 * 60_000;
// Signatures seen within the freshness window; a repeat is answered but not passed on again.
const MAX_REMEMBERED = 10_000;

interface Endpoint {
  readonly id: string;
  readonly vendor: "dingtalk" | "wecom";
  readonly token: string;
  readonly key: Buffer;
  /** DingTalk: ownerKey (default AppKey); WeCom: the corpId (receiveid). */
  readonly owner: string;
}

type Opened =
  { readonly ok: true; readonly message: string } | { readonly ok: false; readonly reason: CallbackRefusal };

function endpointsOf(sources: readonly SourceConfigEntry[]): Map<string, Endpoint> {
  const endpoints = new Map<string, Endpoint>();
  for (const source of sources) {
    if (source.type === "dingtalk" && source.config.callback !== undefined) {
      const { token, aesKey, ownerKey } = source.config.callback;
      endpoints.set(source.id, {
        id: source.id,
        vendor: "dingtalk",
        token,
        key: decodeAesKey(aesKey),
        owner: ownerKey ?? source.config.appKey,
      });
    } else if (source.type === "wecom" && source.config.callback !== undefined) {
      const { token, aesKey } = source.config.callback;
      endpoints.set(source.id, {
        id: source.id,
        vendor: "wecom",
        token,
        key: decodeAesKey(aesKey),
        owner: source.config.corpId,
      });
    }
  }
  return endpoints;
}

/** The router to mount at `/callbacks`: `POST /:sourceId` (both vendors), `GET /:sourceId` (WeCom's check). */
export function callbackRouter(options: CallbackRouterOptions): Router {
  const endpoints = endpointsOf(options.sources);
  const now = options.now ?? (() => new Date());
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const fallbackLogger = options.logger ?? pino({ enabled: false });
  const auditBudget = options.maxRefusalAuditsPerMinute ?? 60;
  const seen = new Map<string, number>();
  const refusals = new Map<string, { windowStart: number; count: number }>();

  const log = (req: Request): Logger => (req as { log?: Logger }).log ?? fallbackLogger;

  /** Signature, freshness, decryption and owner, in that order (the cheapest checks first). */
  function open(endpoint: Endpoint, envelope: DingTalkEnvelope | WeComEnvelope, at: number): Opened {
    const { signature, timestamp, nonce, encrypt } = envelope;
    if (!verifyCallbackSignature(endpoint.token, timestamp, nonce, encrypt, signature))
      return { ok: false, reason: "bad_signature" };
    const sentAt = parseCallbackTimestamp(timestamp);
    if (sentAt === null || Math.abs(at - sentAt) > maxAgeMs) return { ok: false, reason: "stale_timestamp" };
    const opened = decryptCallbackMessage(endpoint.key, encrypt);
    if (!opened.ok) return opened;
    if (!equalsConstantTime(opened.ownerKey, endpoint.owner)) return { ok: false, reason: "wrong_owner" };
    return { ok: true, message: opened.message };
  }

  /** True the first time a signature is seen within the freshness window. */
  function firstDelivery(signature: string, at: number): boolean {
    const key = signature.toLowerCase();
    for (const [sig, expires] of seen) {
      if (expires > at && seen.size < MAX_REMEMBERED) break;
      seen.delete(sig);
    }
    if (seen.has(key)) return false;
    seen.set(key, at + 2 * maxAgeMs);
    return true;
  }

  async function refuse(
    req: Request,
    res: Response,
    endpoint: Endpoint,
    status: number,
    reason: CallbackRefusal,
  ): Promise<void> {
    const at = now().getTime();
    const window = refusals.get(endpoint.id);
    const current =
      window === undefined || at - window.windowStart >= 60_000 ? { windowStart: at, count: 0 } : window;
    current.count += 1;
    refusals.set(endpoint.id, current);
    log(req).warn({ sourceId: endpoint.id, reason, remoteIp: req.ip }, "callback refused");
    if (current.count <= auditBudget) {
      try {
        await options.audit({
          actor: `source:${endpoint.id}`,
          action: "callback.refused",
          subject: null,
          target: null,
          details: { reason, remoteIp: req.ip ?? null, vendor: endpoint.vendor },
        });
      } catch (err) {
        log(req).error({ err, sourceId: endpoint.id }, "could not audit a refused callback");
      }
    }
    res.status(status).end();
  }

  function tell(req: Request, endpoint: Endpoint, event: CallbackEvent, receivedAt: Date): void {
    log(req).info(
      {
        sourceId: endpoint.id,
        eventType: event.eventType,
        users: event.userIds.length,
        departments: event.departmentIds.length,
      },
      "callback received",
    );
    if (event.kind === "other") return;
    const change: ContactChange = {
      sourceId: endpoint.id,
      kind: event.kind,
      userIds: event.userIds,
      departmentIds: event.departmentIds,
      eventType: event.eventType,
      receivedAt,
    };
    // After the reply: the vendor's deadline must not wait for the sync.
    setImmediate(() => {
      Promise.resolve()
        .then(() => options.onContactChange(change))
        .catch((err: unknown) =>
          log(req).error({ err, sourceId: endpoint.id }, "contact change handler failed"),
        );
    });
  }

  const router = express.Router();
  const endpointOf = (req: Request, res: Response): Endpoint | undefined => {
    const endpoint = endpoints.get(String(req.params.sourceId));
    if (endpoint === undefined) res.status(404).end();
    return endpoint;
  };
  const rawBody = express.raw({ type: () => true, limit: BODY_LIMIT });

  router.post("/:sourceId", (req, res, next) => {
    const endpoint = endpointOf(req, res);
    if (endpoint === undefined) return;
    rawBody(req, res, (err?: unknown) => {
      if (err !== undefined) {
        const tooLarge = (err as { type?: unknown }).type === "entity.too.large";
        refuse(
          req,
          res,
          endpoint,
          tooLarge ? 413 : 400,
          tooLarge ? "body_too_large" : "malformed_request",
        ).catch(next);
        return;
      }
      handlePost(req, res, endpoint).catch(next);
    });
  });

  async function handlePost(req: Request, res: Response, endpoint: Endpoint): Promise<void> {
    const receivedAt = now();
    const body = Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "";
    const query = req.query as Record<string, unknown>;
    const envelope =
      endpoint.vendor === "dingtalk" ? readDingTalkEnvelope(query, body) : readWeComEnvelope(query, body);
    // DingTalk is answered 403 for every refusal; WeCom 400 for a request that is not even well formed.
    if (envelope === null)
      return refuse(req, res, endpoint, endpoint.vendor === "dingtalk" ? 403 : 400, "malformed_request");
    const opened = open(endpoint, envelope, receivedAt.getTime());
    if (!opened.ok) return refuse(req, res, endpoint, 403, opened.reason);
    const event =
      endpoint.vendor === "dingtalk" ? parseDingTalkEvent(opened.message) : parseWeComEvent(opened.message);
    if (event === null)
      return refuse(req, res, endpoint, endpoint.vendor === "dingtalk" ? 403 : 400, "malformed_event");
    if (endpoint.vendor === "dingtalk")
      res.json(dingTalkSuccessReply(endpoint.token, endpoint.key, endpoint.owner, receivedAt));
    else res.type("text/plain").send("success");
    if (firstDelivery(envelope.signature, receivedAt.getTime())) tell(req, endpoint, event, receivedAt);
    else
      log(req).info(
        { sourceId: endpoint.id, eventType: event.eventType },
        "callback repeated; already passed on",
      );
  }

  // WeCom verifies the URL with a GET whose echostr must be decrypted and echoed as is (WX-DOC 90930).
  router.get("/:sourceId", (req, res, next) => {
    const endpoint = endpointOf(req, res);
    if (endpoint === undefined) return;
    if (endpoint.vendor !== "wecom") {
      res.status(405).end();
      return;
    }
    const receivedAt = now();
    const envelope = readWeComVerification(req.query as Record<string, unknown>);
    if (envelope === null) {
      refuse(req, res, endpoint, 400, "malformed_request").catch(next);
      return;
    }
    const opened = open(endpoint, envelope, receivedAt.getTime());
    if (!opened.ok) {
      refuse(req, res, endpoint, 403, opened.reason).catch(next);
      return;
    }
    res.type("text/plain").send(opened.message);
    tell(
      req,
      endpoint,
      { kind: "check", eventType: "verify_url", userIds: [], departmentIds: [] },
      receivedAt,
    );
  });

  return router;
}
