/** Pure helpers of the broker: language choice, local return paths, signed bindings. */
import { describe, expect, it } from "vitest";
import { createBinder } from "../../src/broker/binding.js";
import { isLocalPath } from "../../src/broker/first-party.js";
import { pickLanguage } from "../../src/broker/messages.js";

describe("pickLanguage", () => {
  it("defaults to Chinese", () => {
    expect(pickLanguage({})).toBe("zh-CN");
    expect(pickLanguage({ acceptLanguage: "fr-FR,de;q=0.8" })).toBe("zh-CN");
  });

  it("prefers ?lang over ui_locales over Accept-Language", () => {
    expect(pickLanguage({ lang: "en", uiLocales: "zh-CN", acceptLanguage: "zh" })).toBe("en");
    expect(pickLanguage({ uiLocales: "fr en-GB", acceptLanguage: "zh" })).toBe("en");
    expect(pickLanguage({ lang: "xx", acceptLanguage: "en-US" })).toBe("en");
  });

  it("ranks Accept-Language by quality, and reads zh-TW and zh-Hans as Chinese", () => {
    expect(pickLanguage({ acceptLanguage: "zh-CN;q=0.5, en;q=0.9" })).toBe("en");
    expect(pickLanguage({ acceptLanguage: "en;q=0, zh-TW" })).toBe("zh-CN");
    expect(pickLanguage({ acceptLanguage: "zh-Hans" })).toBe("zh-CN");
  });
});

describe("isLocalPath", () => {
  const base = "https://sso.example.com";
  it("accepts paths on idbridge", () => {
    expect(isLocalPath("/launch/hesi?page=approve&flowId=1", base)).toBe(true);
  });

  it.each([
    "https://evil.example/",
    "//evil.example/x",
    "/\\evil.example",
    "javascript:alert(1)",
    "launch/hesi",
    "/a\nb",
    "",
    42,
  ])("refuses %j", (value) => {
    expect(isLocalPath(value, base)).toBe(false);
  });
});

describe("createBinder", () => {
  it("opens what it signed, for the same purpose only", () => {
    const binder = createBinder(["s1"]);
    const signed = binder.sign("login-binding", "uid-1");
    expect(binder.open("login-binding", signed)).toBe("uid-1");
    expect(binder.open("login-csrf", signed)).toBeNull();
    expect(binder.check("login-binding", "uid-1", signed)).toBe(true);
    expect(binder.check("login-binding", "uid-2", signed)).toBe(false);
  });

  it("refuses a changed value or signature, and a value signed with an unknown secret", () => {
    const binder = createBinder(["s1"]);
    const signed = binder.sign("login-binding", "uid-1");
    expect(binder.open("login-binding", signed.replace("uid-1", "uid-2"))).toBeNull();
    expect(binder.open("login-binding", `${signed.slice(0, -2)}AA`)).toBeNull();
    expect(binder.open("login-binding", createBinder(["other"]).sign("login-binding", "uid-1"))).toBeNull();
    expect(binder.open("login-binding", undefined)).toBeNull();
  });

  it("still opens values signed with an older secret after rotation", () => {
    const old = createBinder(["s1"]).sign("login-csrf", "uid-1");
    expect(createBinder(["s2", "s1"]).open("login-csrf", old)).toBe("uid-1");
  });
});
