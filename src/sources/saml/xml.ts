/** Strict XML parsing for what IdPs send: errors throw, and documents with a DOCTYPE are refused. */
import { DOMParser } from "@xmldom/xmldom";

/** Parses `text`; throws on malformed XML and on any DOCTYPE (entity expansion has no place in SAML). */
export function parseXml(text: string): Document {
  if (/<!DOCTYPE/i.test(text)) throw new Error("a DOCTYPE is not allowed");
  const fail = (message: string): never => {
    throw new Error(message.split("\n")[0]);
  };
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: fail, fatalError: fail },
  }).parseFromString(text, "text/xml");
  if (doc.documentElement === null) throw new Error("no root element");
  return doc as unknown as Document;
}
