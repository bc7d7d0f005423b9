/** The words of the console's audit pages (see ../pages/). */
export const audit = {
  "zh-CN": {},
  en: {},
};
