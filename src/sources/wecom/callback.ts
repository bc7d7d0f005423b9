/**
 * WeCom's contact-change callbacks (reference B7, WX-DOC 96302/96303/91144): URL verification is a `GET` with
 * `echostr`, events are `POST url?msg_signature=&timestamp=&nonce=` with an XML body whose `Encrypt`
 * decrypts to `<xml>…<Event>change_contact</Event><ChangeType>…</ChangeType>…</xml>`. Since 2022 the events
 * carry ids only (UserID, Department; Id, ParentId), so the bridge re-reads what they name.
 */
import type { CallbackEvent } from "../http/callback-event.js";

/** The signed parts of a WeCom request: `encrypt` is the body's `Encrypt` or the GET's `echostr`. */
export interface WeComEnvelope {
  /** `msg_signature`. */
  readonly signature: string;
  /** `timestamp` (seconds). */
  readonly timestamp: string;
  /** `nonce`. */
  readonly nonce: string;
  /** The base64 ciphertext. */
  readonly encrypt: string;
}

const USER_CHANGES = new Set(["create_user", "update_user", "delete_user"]);
const PARTY_CHANGES = new Set(["create_party", "update_party", "delete_party"]);

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined;

const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decodeEntities(value: string): string | null {
  let bad = false;
  const decoded = value.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (match, name: string | undefined) => {
    if (name === undefined) {
      bad = true;
      return match;
    }
    if (name.startsWith("#")) {
      const code = name[1] === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (code > 0x10ffff) bad = true;
      return bad ? match : String.fromCodePoint(code);
    }
    const known = ENTITIES[name];
    if (known === undefined) bad = true;
    return known ?? match;
  });
  return bad ? null : decoded;
}

/**
 * The text of each child of the root `<xml>` element, or null for anything that is not such a document.
 * WeCom's envelopes and events are one flat level of elements with text or CDATA; deeper elements (ExtAttr
 * items) are skipped. No DOCTYPE, no attributes, no processing beyond an optional `<?xml …?>` prolog: a
 * hand-written reader of this subset is smaller than a parser with entity expansion to switch off.
 */
export function readFlatXml(xml: string): Map<string, string> | null {
  const token = /\s*<\?xml[^?]*\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<(\/?)([A-Za-z_][\w.-]*)\s*(\/?)>|([^<]+)/y;
  const fields = new Map<string, string>();
  const open: string[] = [];
  let value = "";
  let seenRoot = false;
  let pos = 0;
  while (pos < xml.length) {
    token.lastIndex = pos;
    const m = token.exec(xml);
    if (m === null) return null;
    pos = token.lastIndex;
    const [whole, cdata, closing, name, selfClosing, chars] = m;
    if (whole.trimStart().startsWith("<?xml")) {
      if (seenRoot || open.length > 0) return null;
    } else if (cdata !== undefined) {
      if (open.length === 2) value += cdata;
      else if (open.length === 0) return null;
    } else if (chars !== undefined) {
      if (open.length === 0) {
        if (chars.trim().length > 0) return null;
      } else if (open.length === 2) {
        const decoded = decodeEntities(chars);
        if (decoded === null) return null;
        value += decoded;
      }
    } else if (name !== undefined) {
      if (selfClosing === "/") {
        if (closing === "/" || open.length === 0) return null;
        if (open.length === 1 && !fields.has(name)) fields.set(name, "");
      } else if (closing === "/") {
        if (open.pop() !== name) return null;
        if (open.length === 1 && !fields.has(name)) fields.set(name, value);
      } else {
        if (open.length === 0 && (seenRoot || name !== "xml")) return null;
        seenRoot = true;
        open.push(name);
        if (open.length === 2) value = "";
      }
    }
  }
  return seenRoot && open.length === 0 ? fields : null;
}

/** The signed parts of an event POST, or null when one is missing or the body is not WeCom's XML. */
export function readWeComEnvelope(query: Record<string, unknown>, body: string): WeComEnvelope | null {
  const fields = readFlatXml(body);
  const signature = text(query.msg_signature);
  const timestamp = text(query.timestamp);
  const nonce = text(query.nonce);
  const encrypt = text(fields?.get("Encrypt")?.trim());
  if (signature === undefined || timestamp === undefined || nonce === undefined || encrypt === undefined)
    return null;
  return { signature, timestamp, nonce, encrypt };
}

/** The signed parts of a URL verification GET (`echostr` is the ciphertext), or null. */
export function readWeComVerification(query: Record<string, unknown>): WeComEnvelope | null {
  const signature = text(query.msg_signature);
  const timestamp = text(query.timestamp);
  const nonce = text(query.nonce);
  const encrypt = text(query.echostr);
  if (signature === undefined || timestamp === undefined || nonce === undefined || encrypt === undefined)
    return null;
  return { signature, timestamp, nonce, encrypt };
}

const list = (value: string | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);

/**
 * The event of a decrypted message, or null when it is not WeCom XML. Messages other than
 * `change_contact` (app messages, other events) are `other`.
 */
export function parseWeComEvent(message: string): CallbackEvent | null {
  const fields = readFlatXml(message);
  if (fields === null) return null;
  const event = fields.get("Event")?.trim();
  const changeType = fields.get("ChangeType")?.trim();
  const other = (eventType: string): CallbackEvent => ({
    kind: "other",
    eventType,
    userIds: [],
    departmentIds: [],
  });
  if (fields.get("MsgType")?.trim() !== "event" || event !== "change_contact" || changeType === undefined)
    return other(changeType ?? event ?? fields.get("MsgType")?.trim() ?? "unknown");
  if (USER_CHANGES.has(changeType)) {
    // NewUserID comes when a system-generated userid is changed (once): the old id goes, the new one comes.
    const userIds = [...list(fields.get("UserID")), ...list(fields.get("NewUserID"))];
    return { kind: "users", eventType: changeType, userIds, departmentIds: [] };
  }
  if (PARTY_CHANGES.has(changeType))
    return { kind: "departments", eventType: changeType, userIds: [], departmentIds: list(fields.get("Id")) };
  if (changeType === "update_tag") {
    // Tags are groups: their members (people, and everyone in the listed departments) need a re-read.
    const userIds = [...list(fields.get("AddUserItems")), ...list(fields.get("DelUserItems"))];
    const departmentIds = [...list(fields.get("AddPartyItems")), ...list(fields.get("DelPartyItems"))];
    return {
      kind: userIds.length > 0 ? "users" : "departments",
      eventType: changeType,
      userIds,
      departmentIds,
    };
  }
  return other(changeType);
}
