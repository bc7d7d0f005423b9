/**
 * What people read on the sign-in pages, in Chinese (the default) and English, through i18next. Every
 * failure code a sign-in can end with has a plain sentence here; no page shows a stack, a vendor code or
 * an error key.
 */
import i18next, { type TFunction } from "i18next";
import type { ResolveFailureCode } from "./contracts.js";
import type { SignInFailureCode } from "../sources/sign-in.js";

/** Languages the pages speak; the first is the default. */
export const LANGUAGES = ["zh-CN", "en"] as const;
export type Language = (typeof LANGUAGES)[number];

/** Failures of the broker itself (flow state, interaction, input). */
export type FlowFailureCode =
  /** The callback's state is unknown, used already, expired, or belongs to another browser. */
  | "FLOW_INVALID"
  /** The sign-in page was open too long, or the browser lost its cookies. */
  | "INTERACTION_EXPIRED"
  /** Too many attempts. */
  | "RATE_LIMITED"
  /** The form was not sent from our page (CSRF token missing or wrong). */
  | "FORM_INVALID"
  /** The source is not offered for sign-in or cannot do what was asked. */
  | "SOURCE_UNKNOWN"
  /** The request is malformed or too large. */
  | "REQUEST_INVALID"
  /** An unexpected error; details are in the log. */
  | "INTERNAL";

/** Every reason a page may show. */
export type FailureCode = SignInFailureCode | ResolveFailureCode | FlowFailureCode;

type Sentences = Record<FailureCode, string>;

const zhFailures: Sentences = {
  INVALID_CREDENTIALS: "用户名或密码不正确。",
  ACCOUNT_LOCKED: "此账号已被锁定，请稍后再试或联系管理员。",
  PASSWORD_EXPIRED: "密码已过期，请先修改密码。",
  MUST_CHANGE_PASSWORD: "请先修改初始密码后再登录。",
  ACCOUNT_DISABLED: "此账号已被停用，请联系管理员。",
  ACCOUNT_EXPIRED: "此账号已过期，请联系管理员。",
  ACCOUNT_LEFT: "此账号已离职，无法登录。",
  LOGON_HOURS: "当前时间不允许此账号登录。",
  LOGON_WORKSTATION: "此账号不允许从这台电脑登录。",
  FOREIGN_ORGANISATION: "此账号不属于本企业，无法登录。",
  NOT_A_MEMBER: "您不是本企业的成员，无法登录。",
  CANCELLED: "登录已取消。",
  INVALID_RESPONSE: "登录信息无效或已被使用，请重新登录。",
  SOURCE_UNAVAILABLE: "{{source}}暂时无法访问，请稍后重试。",
  NOT_PROVISIONED: "您的账号尚未开通，请联系管理员。",
  IN_REVIEW: "您的账号正在审核中，请稍后再试或联系管理员。",
  IGNORED: "此账号不能用于登录，请联系管理员。",
  FLOW_INVALID: "登录请求已失效，请重新登录。",
  INTERACTION_EXPIRED: "登录页面已过期，请返回应用重新登录。",
  RATE_LIMITED: "尝试次数过多，请稍后再试。",
  FORM_INVALID: "页面已失效，请刷新后重试。",
  SOURCE_UNKNOWN: "不支持此登录方式。",
  REQUEST_INVALID: "请求无效。",
  INTERNAL: "出现了问题，请稍后重试。",
};

const enFailures: Sentences = {
  INVALID_CREDENTIALS: "The user name or password is not right.",
  ACCOUNT_LOCKED: "Your account is locked. Try again later or contact your administrator.",
  PASSWORD_EXPIRED: "Your password has expired. Change it first.",
  MUST_CHANGE_PASSWORD: "Change your initial password before you sign in.",
  ACCOUNT_DISABLED: "Your account is disabled. Contact your administrator.",
  ACCOUNT_EXPIRED: "Your account has expired. Contact your administrator.",
  ACCOUNT_LEFT: "This account belongs to someone who has left and cannot sign in.",
  LOGON_HOURS: "Your account may not sign in at this time.",
  LOGON_WORKSTATION: "Your account may not sign in from this computer.",
  FOREIGN_ORGANISATION: "This account belongs to another organisation and cannot sign in here.",
  NOT_A_MEMBER: "You are not a member of this organisation.",
  CANCELLED: "Sign-in was cancelled.",
  INVALID_RESPONSE: "The sign-in was not valid or was already used. Sign in again.",
  SOURCE_UNAVAILABLE: "{{source}} is not reachable, try again.",
  NOT_PROVISIONED: "Your account has not been set up yet. Contact your administrator.",
  IN_REVIEW: "Your account is being reviewed. Try again later or contact your administrator.",
  IGNORED: "This account cannot be used to sign in. Contact your administrator.",
  FLOW_INVALID: "This sign-in request is no longer valid. Sign in again.",
  INTERACTION_EXPIRED: "The sign-in page has expired. Go back to the application and sign in again.",
  RATE_LIMITED: "Too many attempts. Try again later.",
  FORM_INVALID: "The page has expired. Reload it and try again.",
  SOURCE_UNKNOWN: "This way of signing in is not offered.",
  REQUEST_INVALID: "The request is not valid.",
  INTERNAL: "Something went wrong. Try again later.",
};

const resources = {
  "zh-CN": {
    translation: {
      failure: zhFailures,
      title: {
        signIn: "登录",
        failed: "无法登录",
        notProvisioned: "账号未开通",
        signedOut: "已退出登录",
        logout: "退出登录",
        error: "出错了",
      },
      signIn: {
        heading: "登录",
        to: "登录到 {{client}}",
        choose: "选择登录方式",
        with: "使用{{source}}登录",
        password: "使用{{source}}账号和密码登录",
        login: "用户名",
        secret: "密码",
        submit: "登录",
        inApp: "正在通过{{source}}登录…",
        again: "重新登录",
        none: "没有可用的登录方式，请联系管理员。",
      },
      logout: {
        question: "要退出登录吗？",
        yes: "退出",
        no: "保持登录",
        done: "您已退出登录。",
      },
      source: { dingtalk: "钉钉", wecom: "企业微信", ldap: "域账号", oidc: "企业账号", saml: "企业账号" },
      launch: {
        title: "无法打开{{target}}",
        notLinked: "您在{{target}}的账号尚未开通，请联系管理员。",
        refused: "{{target}}未能为您登录，请联系管理员。",
        invalid: "此链接无效，请检查链接或联系管理员。",
      },
    },
  },
  en: {
    translation: {
      failure: enFailures,
      title: {
        signIn: "Sign in",
        failed: "Cannot sign in",
        notProvisioned: "Account not set up",
        signedOut: "Signed out",
        logout: "Sign out",
        error: "Something went wrong",
      },
      signIn: {
        heading: "Sign in",
        to: "Sign in to {{client}}",
        choose: "Choose how to sign in",
        with: "Sign in with {{source}}",
        password: "Sign in with your {{source}} user name and password",
        login: "User name",
        secret: "Password",
        submit: "Sign in",
        inApp: "Signing in with {{source}}…",
        again: "Sign in again",
        none: "No way of signing in is configured. Contact your administrator.",
      },
      logout: {
        question: "Do you want to sign out?",
        yes: "Sign out",
        no: "Stay signed in",
        done: "You have signed out.",
      },
      launch: {
        title: "Cannot open {{target}}",
        notLinked: "Your {{target}} account has not been set up yet. Contact your administrator.",
        refused: "{{target}} did not sign you in. Contact your administrator.",
        invalid: "This link is not valid. Check it or contact your administrator.",
      },
      source: {
        dingtalk: "DingTalk",
        wecom: "WeCom",
        ldap: "domain account",
        oidc: "company account",
        saml: "company account",
      },
    },
  },
};

const i18n = i18next.createInstance();
// Resources are in memory, so initialisation is synchronous (initAsync: false) and needs no await.
void i18n.init({
  resources,
  lng: "zh-CN",
  fallbackLng: "zh-CN",
  supportedLngs: [...LANGUAGES],
  initAsync: false,
  interpolation: { escapeValue: false },
});

/** The translator for `language`. Templates escape what they print, so i18next does not. */
export function translator(language: Language): TFunction {
  return i18n.getFixedT(language);
}

/**
 * The language of a request: `?lang=`, then the OIDC `ui_locales`, then Accept-Language (by quality),
 * then Chinese. Only languages we have count; `zh`, `zh-Hans`, `zh-TW` all read Chinese.
 */
export function pickLanguage(input: {
  readonly lang?: string | undefined;
  readonly uiLocales?: string | undefined;
  readonly acceptLanguage?: string | undefined;
}): Language {
  for (const tag of [input.lang, ...(input.uiLocales?.split(" ") ?? [])]) {
    const found = match(tag);
    if (found) return found;
  }
  const ranked = (input.acceptLanguage ?? "")
    .split(",")
    .map((part, index) => {
      const [tag = "", ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag, q: q === undefined ? 1 : Number(q), index };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    const found = match(tag);
    if (found) return found;
  }
  return "zh-CN";
}

function match(tag: string | undefined): Language | undefined {
  const lower = tag?.trim().toLowerCase();
  if (!lower) return undefined;
  if (lower === "zh" || lower.startsWith("zh-")) return "zh-CN";
  if (lower === "en" || lower.startsWith("en-")) return "en";
  return undefined;
}
