/** The words of the console's sync pages (see ../pages/). */
export const sync = {
  "zh-CN": {},
  en: {},
};
