import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseDingTalkEvent, readDingTalkEnvelope } from "../../src/sources/dingtalk/callback.js";
import {
  decodeAesKey,
  decryptCallbackMessage,
  encryptCallbackMessage,
  equalsConstantTime,
  parseCallbackTimestamp,
  signCallback,
  verifyCallbackSignature,
} from "../../src/sources/http/callback-crypto.js";
import { parseWeComEvent, readFlatXml, readWeComEnvelope } from "../../src/sources/wecom/callback.js";

// WeCom's published sample (WXBizMsgCrypt Sample: token QDG6eK, receiveid wx5823bf96d3bd56c7).
const WECOM_SAMPLE = {
  token: "QDG6eK",
  aesKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
  receiveId: "wx5823bf96d3bd56c7",
  signature: "477715d11cdb4164915debcba66cb864d751f3e6",
  timestamp: "1409659813",
  nonce: "1372623149",
  encrypt:
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==",
};

// Our own vector, computed outside this code base: the plaintext built by hand (random prefix
// "0123456789abcdef", length 71, the message, owner "dingappkey01", 25 bytes of padding), encrypted with
// `openssl enc -aes-256-cbc -nopad`, signed with `sort | tr -d '\n' | sha1sum`.
const OWN = {
  token: "tok-3",
  aesKey: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aQ",
  owner: "dingappkey01",
  timestamp: "1700000000000",
  nonce: "nonce42",
  message: '{"EventType":"user_modify_org","UserId":["u-7"],"CorpId":"ding-corp-1"}',
  encrypt:
    "pxDvIKtJjb6ivztGO70jShvmv0WyfvrNvt3lT/I8fvrmxz3E0IYNVENNcUt0IkIGhc8xix8a9+R1sRFDpGCyLpQA//nDdkhjXtuqsU1Yc19Pyljzpryf0lX+CDgx+0y8S1BgOalfCVak1VVc0HkaJoOmbVtmFXmazQ2w4L3yWNY=",
  signature: "64e748061255dc28f68074b07703de315f248456",
};

/** Encrypts an exact plaintext (padding included) to craft malformed messages. */
function sealRaw(key: Buffer, plain: Buffer): string {
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(plain), cipher.final()]).toString("base64");
}

function frame(message: Buffer, owner: string, lengthField = message.length): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(lengthField);
  return Buffer.concat([Buffer.alloc(16, 7), length, message, Buffer.from(owner)]);
}

function padTo32(plain: Buffer): Buffer {
  const n = 32 - (plain.length % 32);
  return Buffer.concat([plain, Buffer.alloc(n, n)]);
}

function flipBit(encrypt: string, byteIndex: number): string {
  const data = Buffer.from(encrypt, "base64");
  data[byteIndex] = (data[byteIndex] ?? 0) ^ 0x01;
  return data.toString("base64");
}

describe("callback crypto against vendor vectors", () => {
  it("verifies and decrypts WeCom's published sample to its message and receiveid", () => {
    const s = WECOM_SAMPLE;
    expect(signCallback(s.token, s.timestamp, s.nonce, s.encrypt)).toBe(s.signature);
    expect(verifyCallbackSignature(s.token, s.timestamp, s.nonce, s.encrypt, s.signature)).toBe(true);
    const opened = decryptCallbackMessage(decodeAesKey(s.aesKey), s.encrypt);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.ownerKey).toBe(s.receiveId);
    expect(opened.message).toContain("<Content><![CDATA[hello]]></Content>");
    expect(opened.message).toContain("<AgentID>218</AgentID>");
  });

  it("encrypts Tencent's WXBizMsgCrypt test vector byte for byte (fixed random prefix)", () => {
    const key = decodeAesKey("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
    const encrypt = encryptCallbackMessage(
      key,
      "我是中文abcd123",
      "wxb11529c136998cb6",
      Buffer.from("aaaabbbbccccdddd"),
    );
    expect(encrypt).toBe(
      "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
    );
  });

  it("matches a vector computed with openssl and sha1sum, both ways", () => {
    const key = decodeAesKey(OWN.aesKey);
    expect(encryptCallbackMessage(key, OWN.message, OWN.owner, Buffer.from("0123456789abcdef"))).toBe(
      OWN.encrypt,
    );
    expect(decryptCallbackMessage(key, OWN.encrypt)).toEqual({
      ok: true,
      message: OWN.message,
      ownerKey: OWN.owner,
    });
    expect(signCallback(OWN.token, OWN.timestamp, OWN.nonce, OWN.encrypt)).toBe(OWN.signature);
  });
});

describe("callback crypto round trip", () => {
  it("decrypts what it encrypted, multi-byte text and a random prefix included", () => {
    const key = decodeAesKey(OWN.aesKey);
    for (const message of ["", "success", "部门变更 ✓".repeat(40)]) {
      const encrypt = encryptCallbackMessage(key, message, "ww-corp");
      expect(Buffer.from(encrypt, "base64").length % 32).toBe(0);
      expect(decryptCallbackMessage(key, encrypt)).toEqual({ ok: true, message, ownerKey: "ww-corp" });
    }
  });

  it("gives different ciphertexts for the same message (the random prefix is fresh)", () => {
    const key = decodeAesKey(OWN.aesKey);
    expect(encryptCallbackMessage(key, "success", "o")).not.toBe(encryptCallbackMessage(key, "success", "o"));
  });

  it("accepts 16-byte PKCS#7 padding as well (some SDKs pad to AES's block)", () => {
    const key = decodeAesKey(OWN.aesKey);
    const plain = frame(Buffer.from("hi"), "own");
    const n = 16 - (plain.length % 16);
    const encrypt = sealRaw(key, Buffer.concat([plain, Buffer.alloc(n, n)]));
    expect(decryptCallbackMessage(key, encrypt)).toEqual({ ok: true, message: "hi", ownerKey: "own" });
  });
});

describe("callback crypto refuses tampered input without throwing", () => {
  const key = decodeAesKey(OWN.aesKey);
  const refused = { ok: false, reason: "undecryptable" };

  it("refuses a bit flip in the padding length byte", () => {
    // Flipping byte i of the second-to-last block flips plaintext byte i+16: here the final pad byte.
    const length = Buffer.from(OWN.encrypt, "base64").length;
    expect(decryptCallbackMessage(key, flipBit(OWN.encrypt, length - 17))).toEqual(refused);
  });

  it("refuses a bit flip in the last block (garbled padding)", () => {
    const length = Buffer.from(OWN.encrypt, "base64").length;
    expect(decryptCallbackMessage(key, flipBit(OWN.encrypt, length - 1))).toEqual(refused);
  });

  it("fails the signature for a bit flip anywhere in the ciphertext", () => {
    for (const index of [0, 20, 64, 127]) {
      const tampered = flipBit(OWN.encrypt, index);
      expect(verifyCallbackSignature(OWN.token, OWN.timestamp, OWN.nonce, tampered, OWN.signature)).toBe(
        false,
      );
    }
  });

  it("refuses a wrong, truncated, or differently-salted signature and accepts upper-case hex", () => {
    const check = (signature: string): boolean =>
      verifyCallbackSignature(OWN.token, OWN.timestamp, OWN.nonce, OWN.encrypt, signature);
    expect(check(OWN.signature)).toBe(true);
    expect(check(OWN.signature.toUpperCase())).toBe(true);
    expect(check(`${OWN.signature.slice(0, -1)}7`)).toBe(false);
    expect(check(OWN.signature.slice(0, 20))).toBe(false);
    expect(check("")).toBe(false);
    expect(verifyCallbackSignature("other-token", OWN.timestamp, OWN.nonce, OWN.encrypt, OWN.signature)).toBe(
      false,
    );
    expect(verifyCallbackSignature(OWN.token, "1700000000001", OWN.nonce, OWN.encrypt, OWN.signature)).toBe(
      false,
    );
  });

  it("reports the true owner so a message for another organisation can be told apart", () => {
    const encrypt = encryptCallbackMessage(key, "{}", "ding-other-org");
    const opened = decryptCallbackMessage(key, encrypt);
    expect(opened.ok && opened.ownerKey).toBe("ding-other-org");
    expect(equalsConstantTime("ding-other-org", OWN.owner)).toBe(false);
    expect(equalsConstantTime(OWN.owner, OWN.owner)).toBe(true);
  });

  it("refuses bad PKCS#7 padding: zero, above 32, and unequal pad bytes", () => {
    const plain = frame(Buffer.from("msg"), "own");
    const fill = 32 - (plain.length % 32);
    const zero = Buffer.concat([plain, Buffer.alloc(fill, 0)]);
    const big = Buffer.concat([plain, Buffer.alloc(fill + 32, 0)]);
    big[big.length - 1] = 33;
    const uneven = padTo32(plain);
    uneven[uneven.length - 2] = (uneven[uneven.length - 2] ?? 0) + 1;
    for (const bad of [zero, big, uneven])
      expect(decryptCallbackMessage(key, sealRaw(key, bad))).toEqual(refused);
  });

  it("refuses a length field larger than the buffer", () => {
    for (const lengthField of [0xffffffff, 1000, 3 + 3 + 1]) {
      const encrypt = sealRaw(key, padTo32(frame(Buffer.from("msg"), "own", lengthField)));
      expect(decryptCallbackMessage(key, encrypt)).toEqual(refused);
    }
  });

  it("refuses a plaintext too short to hold the random prefix and length", () => {
    expect(decryptCallbackMessage(key, sealRaw(key, padTo32(Buffer.alloc(10, 1))))).toEqual(refused);
  });

  it("refuses non-base64, empty and non-block-sized ciphertexts", () => {
    for (const encrypt of ["", "not base64!", "AAAA", Buffer.alloc(40).toString("base64")])
      expect(decryptCallbackMessage(key, encrypt)).toEqual(refused);
  });

  it("refuses a message that is not valid UTF-8", () => {
    const encrypt = sealRaw(key, padTo32(frame(Buffer.from([0xc3, 0x28]), "own")));
    expect(decryptCallbackMessage(key, encrypt)).toEqual(refused);
  });

  it("refuses a ciphertext made with another key", () => {
    const other = decodeAesKey(WECOM_SAMPLE.aesKey);
    expect(decryptCallbackMessage(other, OWN.encrypt)).toEqual(refused);
  });
});

describe("callback keys and timestamps", () => {
  it("decodes a 43-character EncodingAESKey to 32 bytes and refuses other shapes", () => {
    expect(decodeAesKey(OWN.aesKey)).toHaveLength(32);
    expect(() => decodeAesKey(OWN.aesKey.slice(1))).toThrow(TypeError);
    expect(() => decodeAesKey(`${OWN.aesKey}A`)).toThrow(TypeError);
    expect(() => decodeAesKey(`${OWN.aesKey.slice(1)}-`)).toThrow(TypeError);
  });

  it("reads millisecond and second timestamps and refuses anything else", () => {
    expect(parseCallbackTimestamp("1700000000000")).toBe(1_700_000_000_000);
    expect(parseCallbackTimestamp("1409659813")).toBe(1_409_659_813_000);
    for (const bad of ["", "-1", "1.5", "17e11", "12345678901234", " 1"])
      expect(parseCallbackTimestamp(bad)).toBeNull();
  });
});

describe("DingTalk callback envelope and events", () => {
  it("reads msg_signature, or signature as the overview shows it, and the body's encrypt", () => {
    const body = JSON.stringify({ encrypt: "abc" });
    expect(readDingTalkEnvelope({ msg_signature: "s", timestamp: "1", nonce: "n" }, body)).toEqual({
      signature: "s",
      timestamp: "1",
      nonce: "n",
      encrypt: "abc",
    });
    expect(readDingTalkEnvelope({ signature: "s2", timestamp: "1", nonce: "n" }, body)?.signature).toBe("s2");
    expect(readDingTalkEnvelope({ timestamp: "1", nonce: "n" }, body)).toBeNull();
    expect(readDingTalkEnvelope({ msg_signature: ["a", "b"], timestamp: "1", nonce: "n" }, body)).toBeNull();
    expect(readDingTalkEnvelope({ msg_signature: "s", timestamp: "1", nonce: "n" }, "{not json")).toBeNull();
  });

  it("maps user, department, check and other events to the ids they name", () => {
    expect(parseDingTalkEvent('{"EventType":"user_modify_org","UserId":["a","b"],"CorpId":"c"}')).toEqual({
      kind: "users",
      eventType: "user_modify_org",
      userIds: ["a", "b"],
      departmentIds: [],
    });
    expect(parseDingTalkEvent('{"eventType":"org_dept_remove","data":{"deptId":[12,13]}}')).toEqual({
      kind: "departments",
      eventType: "org_dept_remove",
      userIds: [],
      departmentIds: ["12", "13"],
    });
    expect(parseDingTalkEvent('{"EventType":"check_url"}')?.kind).toBe("check");
    expect(parseDingTalkEvent('{"EventType":"bpms_task_change"}')?.kind).toBe("other");
    expect(parseDingTalkEvent('{"UserId":["a"]}')).toBeNull();
    expect(parseDingTalkEvent("[1]")).toBeNull();
    expect(parseDingTalkEvent("success")).toBeNull();
  });
});

describe("WeCom callback envelope and events", () => {
  const event = (inner: string): string =>
    `<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>${inner}</xml>`;

  it("reads the Encrypt element of the body and the query's signature parts", () => {
    const body =
      "<xml><ToUserName><![CDATA[ww1]]></ToUserName><AgentID><![CDATA[1]]></AgentID><Encrypt><![CDATA[QUJD]]></Encrypt></xml>";
    expect(readWeComEnvelope({ msg_signature: "s", timestamp: "1", nonce: "n" }, body)).toEqual({
      signature: "s",
      timestamp: "1",
      nonce: "n",
      encrypt: "QUJD",
    });
    expect(readWeComEnvelope({ msg_signature: "s", timestamp: "1", nonce: "n" }, "<xml></xml>")).toBeNull();
  });

  it("maps user changes, a rename, party changes and tag changes to ids", () => {
    expect(
      parseWeComEvent(
        event("<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID><Department>1,2</Department>"),
      ),
    ).toEqual({
      kind: "users",
      eventType: "update_user",
      userIds: ["zhangsan"],
      departmentIds: [],
    });
    expect(
      parseWeComEvent(
        event(
          "<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID><NewUserID>zhangsan001</NewUserID>",
        ),
      )?.userIds,
    ).toEqual(["zhangsan", "zhangsan001"]);
    expect(parseWeComEvent(event("<ChangeType>delete_party</ChangeType><Id>7</Id>"))).toEqual({
      kind: "departments",
      eventType: "delete_party",
      userIds: [],
      departmentIds: ["7"],
    });
    expect(
      parseWeComEvent(
        event(
          "<ChangeType>update_tag</ChangeType><TagId>3</TagId><AddUserItems>a,b</AddUserItems><DelPartyItems>4</DelPartyItems>",
        ),
      ),
    ).toEqual({ kind: "users", eventType: "update_tag", userIds: ["a", "b"], departmentIds: ["4"] });
  });

  it("treats messages other than change_contact as other events", () => {
    const text = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content></xml>";
    expect(parseWeComEvent(text)?.kind).toBe("other");
  });

  it("reads only the first level of elements, skipping nested ExtAttr items", () => {
    const xml = event(
      "<ChangeType>update_user</ChangeType><ExtAttr><Item><Name>UserID</Name><Value>x</Value></Item></ExtAttr><UserID>u1</UserID>",
    );
    expect(parseWeComEvent(xml)?.userIds).toEqual(["u1"]);
  });

  it("refuses documents outside the flat subset: DOCTYPE, attributes, unknown entities, unbalanced tags", () => {
    for (const bad of [
      '<!DOCTYPE xml [<!ENTITY e "x">]><xml><A>&e;</A></xml>',
      '<xml><A id="1">x</A></xml>',
      "<xml><A>&e;</A></xml>",
      "<xml><A>x</B></xml>",
      "<xml><A>x</A>",
      "<root><A>x</A></root>",
      "<xml></xml><xml></xml>",
      "",
    ])
      expect(readFlatXml(bad)).toBeNull();
  });

  it("decodes the five XML entities and character references in text", () => {
    expect(readFlatXml('<?xml version="1.0"?><xml><A>a&amp;b&lt;&#x4e2d;&#25991;</A></xml>')?.get("A")).toBe(
      "a&b<中文",
    );
  });
});
