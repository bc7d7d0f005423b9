/**
 * The sign-in pages: eta templates (auto-escaping) kept as strings in this module, so `npm run build`
 * (tsc) ships them without copying assets. Every page is one narrow column that works on a phone, carries
 * no script except the in-app page of a JSAPI source (DingTalk) (whose one inline script has a per-response nonce), and sets
 * its own Content-Security-Policy.
 */
import { randomBytes } from "node:crypto";
import { Eta } from "eta";
import type { JsapiPage } from "../sources/sign-in.js";
import { translator, type FailureCode, type Language } from "./messages.js";

const eta = new Eta({ autoEscape: true, autoTrim: false, cache: true });

const LAYOUT = `<!DOCTYPE html>
<html lang="<%= it.lang %>">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title><%= it.title %></title>
<style>
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f5f7;color:#1f2329}
main{max-width:24rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.1)}
h1{font-size:1.3rem;margin:0 0 1rem}
p{line-height:1.5}
a.source,button{display:block;width:100%;box-sizing:border-box;padding:.7rem;margin:.5rem 0;border:0;border-radius:6px;background:#3370ff;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
button.secondary{background:#e4e6eb;color:#1f2329}
label{display:block;margin:.6rem 0 .2rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #c9cdd4;border-radius:6px}
.error{background:#fff1f0;border:1px solid #ffccc7;padding:.6rem;border-radius:6px}
fieldset{border:0;padding:0;margin:1rem 0 0}
</style>
</head>
<body><main>
<h1><%= it.title %></h1>
<%~ it.body %>
</main></body>
</html>`;

const LOGIN = `<% if (it.client) { %><p><%= it.client %></p><% } %>
<% if (it.error) { %><p class="error" role="alert"><%= it.error %></p><% } %>
<% if (it.sources.length === 0 && it.passwords.length === 0) { %><p><%= it.none %></p><% } %>
<% it.sources.forEach(function (s) { %><a class="source" href="<%= s.href %>"><%= s.label %></a>
<% }) %>
<% it.passwords.forEach(function (p) { %><form method="post" action="<%= p.action %>">
<fieldset><legend><%= p.label %></legend>
<input type="hidden" name="csrf" value="<%= it.csrf %>">
<label for="login-<%= p.id %>"><%= it.loginLabel %></label>
<input type="text" id="login-<%= p.id %>" name="login" autocomplete="username" autocapitalize="none" required maxlength="256" value="<%= p.login %>">
<label for="password-<%= p.id %>"><%= it.passwordLabel %></label>
<input type="password" id="password-<%= p.id %>" name="password" autocomplete="current-password" required maxlength="512">
<button type="submit"><%= it.submit %></button>
</fieldset></form>
<% }) %>`;

// The connector's script (JsapiPage.script: code, not data; its values went through scriptLiteral) runs
// inside a function with `send(field, value)`, which posts the form once.
const JSAPI = `<p><%= it.waiting %></p>
<form id="code-form" method="post" action="<%= it.action %>">
<input type="hidden" name="csrf" value="<%= it.csrf %>">
<input type="hidden" name="code" id="code" value="">
<input type="hidden" name="error" id="error" value="">
</form>
<script src="<%= it.scriptUrl %>"></script>
<script nonce="<%= it.nonce %>">
(function () {
  var form = document.getElementById("code-form");
  var sent = false;
  function send(field, value) {
    if (sent) return;
    sent = true;
    document.getElementById(field).value = value;
    form.submit();
  }
<%~ it.script %>
})();
</script>`;

const MESSAGE = `<p<% if (it.error) { %> class="error" role="alert"<% } %>><%= it.text %></p>
<% if (it.again) { %><a class="source" href="<%= it.again.href %>"><%= it.again.label %></a><% } %>`;

const LOGOUT = `<p><%= it.question %></p>
<%~ it.form %>
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus><%= it.yes %></button>
<button type="submit" form="op.logoutForm" class="secondary"><%= it.no %></button>`;

eta.loadTemplate("@layout", LAYOUT);
eta.loadTemplate("@login", LOGIN);
eta.loadTemplate("@jsapi", JSAPI);
eta.loadTemplate("@message", MESSAGE);
eta.loadTemplate("@logout", LOGOUT);

/** A rendered page: its HTML and the Content-Security-Policy it needs. */
export interface Page {
  /** The document. */
  readonly html: string;
  /** The CSP header value for this document. */
  readonly csp: string;
}

// No form-action: after a form post, the provider redirects to the platform's redirect_uri, which a
// form-action 'self' would block in browsers that apply it to redirects (Chromium does).
const BASE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

function page(language: Language, title: string, body: string, csp = BASE_CSP): Page {
  return { html: eta.render("@layout", { lang: language, title, body }), csp };
}

/** One way of signing in on the page. */
export interface SourceChoice {
  /** Source id. */
  readonly id: string;
  /** Source type (`dingtalk`, `ldap`, …), for its label. */
  readonly type: string;
  /** The label from the config, when given. */
  readonly name?: string;
}

function sourceLabel(t: ReturnType<typeof translator>, source: SourceChoice): string {
  return source.name ?? t(`source.${source.type}`, { defaultValue: source.id });
}

/** The sign-in page: redirect sources as buttons, password sources as forms, an error above them. */
export function renderLogin(input: {
  readonly language: Language;
  readonly uid: string;
  readonly clientName?: string;
  readonly redirects: readonly SourceChoice[];
  readonly passwords: readonly SourceChoice[];
  readonly csrf: string;
  readonly error?: { readonly code: FailureCode; readonly sourceLabel?: string };
  readonly login?: string;
}): Page {
  const t = translator(input.language);
  const lang = `lang=${encodeURIComponent(input.language)}`;
  const body = eta.render("@login", {
    client: input.clientName === undefined ? undefined : t("signIn.to", { client: input.clientName }),
    error:
      input.error === undefined
        ? undefined
        : failureSentence(input.language, input.error.code, input.error.sourceLabel),
    none: t("signIn.none"),
    sources: input.redirects.map((s) => ({
      href: `/login/${encodeURIComponent(input.uid)}/source/${encodeURIComponent(s.id)}?${lang}`,
      label: t("signIn.with", { source: sourceLabel(t, s) }),
    })),
    passwords: input.passwords.map((s) => ({
      id: s.id,
      action: `/login/${encodeURIComponent(input.uid)}/password/${encodeURIComponent(s.id)}?${lang}`,
      label: t("signIn.password", { source: sourceLabel(t, s) }),
      login: input.login ?? "",
    })),
    csrf: input.csrf,
    loginLabel: t("signIn.login"),
    passwordLabel: t("signIn.secret"),
    submit: t("signIn.submit"),
  });
  return page(input.language, t("title.signIn"), body);
}

/** The in-app page of a JSAPI source (DingTalk): runs the connector's script and posts the code back without a click. */
export function renderJsapiInApp(input: {
  readonly language: Language;
  readonly action: string;
  readonly csrf: string;
  readonly page: JsapiPage;
  /** How the source is named ("钉钉"). */
  readonly sourceLabel: string;
}): Page {
  const t = translator(input.language);
  const nonce = randomBytes(16).toString("base64");
  const scriptOrigin = new URL(input.page.scriptUrl).origin;
  const body = eta.render("@jsapi", {
    waiting: t("signIn.inApp", { source: input.sourceLabel }),
    action: input.action,
    csrf: input.csrf,
    scriptUrl: input.page.scriptUrl,
    nonce,
    script: input.page.script,
  });
  const csp = `${BASE_CSP}; script-src 'nonce-${nonce}' ${scriptOrigin}; connect-src ${scriptOrigin}`;
  return page(input.language, t("title.signIn"), body, csp);
}

/** The sentence for a failure code; SOURCE_UNAVAILABLE names the source. */
export function failureSentence(language: Language, code: FailureCode, sourceLabelText?: string): string {
  const t = translator(language);
  return t(`failure.${code}`, { source: sourceLabelText ?? t("source.oidc") });
}

/** A page that says why sign-in stopped, with a link to start again when there is one. */
export function renderFailure(input: {
  readonly language: Language;
  readonly code: FailureCode;
  readonly sourceLabel?: string;
  readonly again?: string;
}): Page {
  const t = translator(input.language);
  const title = input.code === "NOT_PROVISIONED" ? t("title.notProvisioned") : t("title.failed");
  const body = eta.render("@message", {
    error: true,
    text: failureSentence(input.language, input.code, input.sourceLabel),
    again: input.again === undefined ? undefined : { href: input.again, label: t("signIn.again") },
  });
  return page(input.language, title, body);
}

/** A page of one sentence under a title, for idbridge's own pages (launch). */
export function renderNotice(input: {
  readonly language: Language;
  readonly title: string;
  readonly text: string;
}): Page {
  return page(input.language, input.title, eta.render("@message", { error: true, text: input.text }));
}

/** The provider's error page: one plain sentence, never the OAuth error code or its description. */
export function renderProviderError(language: Language): Page {
  const t = translator(language);
  const body = eta.render("@message", { error: true, text: failureSentence(language, "REQUEST_INVALID") });
  return page(language, t("title.error"), body);
}

/** The RP-initiated logout confirmation; `form` is the provider's own form (it holds the xsrf token). */
export function renderLogoutConfirm(language: Language, form: string): Page {
  const t = translator(language);
  const body = eta.render("@logout", {
    question: t("logout.question"),
    form,
    yes: t("logout.yes"),
    no: t("logout.no"),
  });
  return page(language, t("title.logout"), body);
}

/** After a logout without a post_logout_redirect_uri. */
export function renderLoggedOut(language: Language): Page {
  const t = translator(language);
  return page(
    language,
    t("title.signedOut"),
    eta.render("@message", { error: false, text: t("logout.done") }),
  );
}

/** How a source type is named on the pages ("钉钉", "DingTalk"). */
export function sourceTypeLabel(language: Language, type: string): string {
  return translator(language)(`source.${type}`, { defaultValue: type });
}
