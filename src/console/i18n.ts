/**
 * The console's words in Chinese (the default) and English, through i18next, in the namespace `console`.
 * The language is picked like the sign-in pages' (src/broker/messages.ts `pickLanguage`), with the
 * console's language cookie between `?lang=` and Accept-Language.
 */
import i18next, { type TFunction } from "i18next";
import { LANGUAGES, pickLanguage, type Language } from "../broker/messages.js";
import { audit } from "./messages/audit.js";
import { common } from "./messages/common.js";
import { sync } from "./messages/sync.js";

export { LANGUAGES, type Language };

/** Cookie that keeps the language chosen with the switch link. */
export const LANGUAGE_COOKIE = "idbridge_console_lang";

const i18n = i18next.createInstance();
// Resources are in memory, so initialisation is synchronous and needs no await.
void i18n.init({
  resources: Object.fromEntries(
    LANGUAGES.map((lang) => [lang, { console: { ...common[lang], sync: sync[lang], audit: audit[lang] } }]),
  ),
  ns: ["console"],
  defaultNS: "console",
  lng: "zh-CN",
  fallbackLng: "zh-CN",
  supportedLngs: [...LANGUAGES],
  initAsync: false,
  // Templates escape what they print.
  interpolation: { escapeValue: false },
});

/** The translator for `language`. Keys of the page groups start with `sync.` or `audit.`. */
export function consoleTranslator(language: Language): TFunction {
  return i18n.getFixedT(language, "console");
}

/** The language of a console request: `?lang=`, then the cookie, then Accept-Language, then Chinese. */
export function consoleLanguage(input: {
  readonly lang?: string | undefined;
  readonly cookie?: string | undefined;
  readonly acceptLanguage?: string | undefined;
}): Language {
  return pickLanguage({
    lang: input.lang,
    uiLocales: input.cookie,
    acceptLanguage: input.acceptLanguage,
  });
}
