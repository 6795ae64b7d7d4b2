// Parses a Mermaid diagram with Mermaid's own parser (in jsdom): exit 0 when valid, 1 with the
// parser's message otherwise. Used by tests/cli.rs; `npm ci` in this folder installs it.
import { JSDOM } from 'jsdom';
import { readFileSync } from 'fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser; globalThis.Element = dom.window.Element;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
const text = readFileSync(process.argv[2], "utf8");
try { const r = await mermaid.parse(text); console.log('ok', JSON.stringify(r)); }
catch (e) { console.error('invalid:', e.message ?? e); process.exit(1); }
