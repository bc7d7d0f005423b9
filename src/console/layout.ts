/**
 * The console's frame: eta templates (auto-escaping: every `<%= %>` is escaped, `<%~ %>` is only used for
 * HTML this module or a template rendered) kept as strings, so `npm run build` ships them without copying
 * assets; one stylesheet served from `/console/assets/` under a content hash, and no script at all.
 *
 * Pages register their templates with {@link defineTemplate} and render them with {@link view}; the frame
 * puts the navigation (only the parts the caller may use — the service still checks every request), the
 * caller, the language switch and the sign-out link around them.
 */
import { createHash } from "node:crypto";
import { Eta } from "eta";
import type { TFunction } from "i18next";
import { can, type Caller, type Permission } from "../admin/access.js";
import type { Language } from "./i18n.js";

const eta = new Eta({ autoEscape: true, autoTrim: false, cache: true });

/** Where the console is mounted. */
export const CONSOLE_PATH = "/console";

const CSS = `
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;margin:0;background:#f4f5f7;color:#1f2329;font-size:15px;line-height:1.5}
a{color:#245bdb}
header{background:#1f2329;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center}
header a{color:#fff;text-decoration:none}
header .product{font-weight:600;margin-right:.5rem}
header nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem;flex:1}
header nav a[aria-current=page]{border-bottom:2px solid #fff}
header .who{font-size:.85rem;opacity:.85;display:flex;gap:.75rem;flex-wrap:wrap}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;color:#000;padding:.25rem}
main{max-width:78rem;margin:1rem auto;padding:0 1rem}
h1{font-size:1.35rem;margin:.5rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
section,.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:1rem;margin:0 0 1rem}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e4e6eb;vertical-align:top}
th{background:#f7f8fa;font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right}
.muted{color:#646a73;font-size:.85rem}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}
.badge{display:inline-block;padding:0 .45rem;border-radius:4px;font-size:.8rem;background:#e4e6eb}
.badge.warn{background:#fff3cd;color:#7a5200}.badge.danger{background:#ffe4e1;color:#a8071a}.badge.ok{background:#e3f9e9;color:#0b6e2e}
.notice{padding:.6rem .8rem;border-radius:6px;margin:0 0 1rem;background:#e8f3ff;border:1px solid #bedaff}
.notice.error{background:#fff1f0;border-color:#ffccc7}
.notice.ok{background:#e3f9e9;border-color:#b7ebc6}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:.85rem;gap:.15rem}
input[type=text],input[type=search],input[type=datetime-local],select,textarea{font:inherit;padding:.4rem .5rem;border:1px solid #c9cdd4;border-radius:6px;background:#fff;max-width:100%}
textarea{width:100%;min-height:5rem}
button,.button{font:inherit;display:inline-block;padding:.45rem .9rem;border:0;border-radius:6px;background:#3370ff;color:#fff;text-decoration:none;cursor:pointer}
button.secondary,.button.secondary{background:#e4e6eb;color:#1f2329}
button.danger{background:#d83931}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.75rem 0 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}
.stats{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:0;padding:0;list-style:none}
.stats li{display:flex;flex-direction:column}.stats b{font-size:1.25rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{color:#646a73}dl.facts dd{margin:0}
ul.why{margin:.2rem 0;padding-left:1.1rem;font-size:.85rem;color:#41464f}
details summary{cursor:pointer}
.paging{display:flex;gap:1rem;margin:.75rem 0 0}
@media (max-width:40rem){header nav{width:100%}main{padding:0 .5rem}section,.card{padding:.75rem}th,td{padding:.35rem}}
`;

/** The stylesheet's file name carries its hash, so it can be cached for a year. */
export const STYLESHEET = {
  name: `console-${createHash("sha256").update(CSS).digest("hex").slice(0, 12)}.css`,
  body: CSS,
};

/**
 * No script anywhere; styles only from our stylesheet; forms post only to us. No `'unsafe-inline'`: the
 * pages have no style attributes either.
 */
export const CONSOLE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const FRAME = `<!DOCTYPE html>
<html lang="<%= it.lang %>">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title><%= it.title %> · <%= it.t("product") %></title>
<link rel="stylesheet" href="<%= it.base %>/assets/<%= it.stylesheet %>">
</head>
<body>
<a class="skip" href="#main"><%= it.t("nav.skip") %></a>
<header>
<a class="product" href="<%= it.base %>/"><%= it.t("product") %></a>
<% if (it.nav.length > 0) { %><nav data-testid="nav"><% it.nav.forEach(function (n) { %>
<a href="<%= it.base %><%= n.path %>"<% if (n.current) { %> aria-current="page"<% } %> data-testid="nav-<%= n.id %>"><%= it.t("nav." + n.id) %></a><% }) %>
</nav><% } %>
<div class="who">
<% if (it.caller) { %><span data-testid="caller"><%= it.callerText %></span><% } %>
<a href="<%= it.languageHref %>" lang="<%= it.otherLang %>" data-testid="language"><%= it.t("nav.language") %></a>
<% if (it.signedIn) { %><a href="<%= it.signOutHref %>" data-testid="sign-out"><%= it.t("nav.signOut") %></a><% } %>
</div>
</header>
<main id="main">
<h1><%= it.title %></h1>
<% if (it.notice) { %><p class="notice<% if (it.notice.kind !== 'info') { %> <%= it.notice.kind %><% } %>" role="<%= it.notice.kind === 'error' ? 'alert' : 'status' %>" data-testid="notice"><%= it.notice.text %></p><% } %>
<%~ it.body %>
</main>
</body>
</html>`;

const ERROR = `<section data-testid="error" data-code="<%= it.code %>">
<p class="notice error" role="alert"><%= it.text %></p>
<% if (it.detail) { %><p class="muted"><%= it.t("error.detail", { detail: it.detail }) %></p><% } %>
<p><a href="<%= it.base %>/"><%= it.t("error.back") %></a></p>
</section>`;

// The paging links of a listing: `it.paging` from {@link pagingLinks}.
const PAGING = `<% if (it.paging.next || it.paging.first) { %><nav class="paging" data-testid="paging">
<% if (it.paging.first) { %><a href="<%= it.paging.first %>" data-testid="first-page"><%= it.t("paging.first") %></a><% } %>
<% if (it.paging.next) { %><a href="<%= it.paging.next %>" data-testid="next-page"><%= it.t("paging.next") %></a><% } %>
</nav><% } %>`;

eta.loadTemplate("@frame", FRAME);
eta.loadTemplate("@paging", PAGING);
eta.loadTemplate("@console-error", ERROR);

/** Registers a page template under `@name`; templates see `it.t`, `it.csrf`, `it.base`, `it.can` and their data. */
export function defineTemplate(name: string, template: string): void {
  eta.loadTemplate(`@${name}`, template);
}

/** One entry of the navigation: the path under /console and the permission it needs. */
interface NavEntry {
  readonly id: string;
  readonly path: string;
  readonly needs: Permission;
}

const NAV: readonly NavEntry[] = [
  { id: "home", path: "/", needs: "sync.read" },
  { id: "plans", path: "/plans", needs: "sync.read" },
  { id: "runs", path: "/runs", needs: "sync.read" },
  { id: "review", path: "/review", needs: "sync.read" },
  { id: "people", path: "/people", needs: "sync.read" },
  { id: "audit", path: "/audit", needs: "audit.read" },
  { id: "holders", path: "/holders", needs: "audit.read" },
  { id: "accessReview", path: "/access-review", needs: "audit.read" },
];

/** A message shown above a page's content (after a POST-redirect-GET, or a refused form). */
export interface Notice {
  readonly kind: "info" | "ok" | "error";
  readonly text: string;
}

/** What every console page is rendered with. */
export interface Frame {
  readonly lang: Language;
  readonly t: TFunction;
  /** Null on pages shown before we know who is calling (no role, errors before sign-in). */
  readonly caller: Caller | null;
  /** True when the browser has an idbridge session (a person without a role may still sign out). */
  readonly signedIn: boolean;
  /** The session's CSRF token, for the hidden `_csrf` field of every form. */
  readonly csrf: string;
  /** The request's path under /console and its query (for the language switch). */
  readonly path: string;
  readonly query: string;
  /** Where signing out goes. */
  readonly signOutHref: string;
}

/** What a page puts in the frame. */
export interface PageContent {
  readonly title: string;
  /** The navigation entry to mark current. */
  readonly nav?: string;
  readonly notice?: Notice;
  readonly body: string;
}

/** The data every template sees besides its own. */
export function templateContext(frame: Frame): Record<string, unknown> {
  return {
    t: frame.t,
    lang: frame.lang,
    csrf: frame.csrf,
    base: CONSOLE_PATH,
    can: (permission: Permission) => frame.caller !== null && can(frame.caller, permission),
  };
}

/** Renders the page template `@name` with `data` (plus the frame's context) to HTML for {@link page}. */
export function view(frame: Frame, name: string, data: Record<string, unknown>): string {
  return eta.render(`@${name}`, { ...templateContext(frame), ...data });
}

/** The whole document. */
export function page(frame: Frame, content: PageContent): string {
  const { t, caller } = frame;
  const other: Language = frame.lang === "zh-CN" ? "en" : "zh-CN";
  const params = new URLSearchParams(frame.query);
  params.set("lang", other);
  return eta.render("@frame", {
    ...templateContext(frame),
    title: content.title,
    body: content.body,
    notice: content.notice,
    stylesheet: STYLESHEET.name,
    caller,
    callerText:
      caller === null
        ? ""
        : t("signedInAs", {
            name: caller.name,
            roles: [...caller.roles].map((r) => t(`roles.${r}`)).join(frame.lang === "en" ? ", " : "、"),
          }),
    nav:
      caller === null
        ? []
        : NAV.filter((n) => can(caller, n.needs)).map((n) => ({ ...n, current: n.id === content.nav })),
    otherLang: other,
    languageHref: `${CONSOLE_PATH}${frame.path}?${params.toString()}`,
    signOutHref: frame.signOutHref,
    signedIn: frame.signedIn,
  });
}

/** A query string for a link: empty values dropped, `?` included when anything is left. */
export function queryString(values: Record<string, string | number | boolean | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values))
    if (value !== undefined && value !== null && value !== "" && value !== false)
      params.set(key, String(value));
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** The links of a cursor-paged listing: the next page (when there is one) and the first (when not on it). */
export interface PagingLinks {
  readonly next: string | undefined;
  readonly first: string | undefined;
}

/**
 * Paging links for the listing at `path` (under /console) with the filters `kept`: `cursor` is the page
 * shown (undefined on the first), `next` the service's cursor of the page after (null on the last).
 */
export function pagingLinks(
  path: string,
  kept: Record<string, string | number | boolean | undefined | null>,
  cursor: string | undefined,
  next: string | null | undefined,
): PagingLinks {
  const href = (extra: Record<string, string>): string =>
    `${CONSOLE_PATH}${path}${queryString({ ...kept, ...extra })}`;
  return {
    next: next === null || next === undefined ? undefined : href({ cursor: next }),
    first: cursor === undefined ? undefined : href({}),
  };
}
