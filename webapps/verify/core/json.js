// Strict JSON, parsed the way verifier/wire/_json.py parses it.
//
// JSON.parse cannot be used: it keeps the last of two members with one name
// (Python refuses the document), it turns 1.0 into the integer 1 (Python keeps
// a float, which no integer claim accepts) and it reorders integer-like keys
// (Python keeps text order, and the order decides which error is met first).
// Objects here have no prototype, so a member named "__proto__" is data.

import { WireError, malformed, tooLarge } from '../../lib/errors.js';
import { MAX_JSON_DEPTH as MAX_DEPTH, MAX_JSON_INTEGER } from '../../lib/shared.js';

export { MAX_DEPTH };
// Beyond the bound (docs/format.md) a double would round, so a literal this
// long is refused before Number() ever sees it.
const MAX_INT_DIGITS = String(MAX_JSON_INTEGER).length;
export const KEYS = Symbol('keys'); // member names in text order

// A JSON number written with a fraction or an exponent: never an integer claim.
export class JFloat {
  constructor(value) { this.value = value; }
  toJSON() { return this.value; }
}

export const isInt = (v) => typeof v === 'number';
export const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JFloat);
export const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
export const get = (o, k) => (has(o, k) ? o[k] : undefined);
export const keysOf = (o) => o[KEYS] || Object.keys(o);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeUtf8(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    throw malformed('invalid UTF-8');
  }
}

function checkDepth(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) n++;
  }
  if (n <= MAX_DEPTH) return;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') {
      depth++;
      if (depth > MAX_DEPTH) throw tooLarge('JSON nested too deeply');
    } else if (ch === ']' || ch === '}') depth--;
  }
}

class Parser {
  constructor(text) {
    this.t = text;
    this.i = 0;
  }

  fail() {
    throw malformed('invalid JSON');
  }

  ws() {
    const t = this.t;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  value() {
    this.ws();
    const c = this.t[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === 't') return this.word('true', true);
    if (c === 'f') return this.word('false', false);
    if (c === 'n') return this.word('null', null);
    if (c === 'N' && this.t.startsWith('NaN', this.i)) throw malformed('JSON constant NaN is not allowed');
    if (c === 'I' && this.t.startsWith('Infinity', this.i)) throw malformed('JSON constant Infinity is not allowed');
    if (c === '-' && this.t.startsWith('-Infinity', this.i)) throw malformed('JSON constant -Infinity is not allowed');
    return this.number();
  }

  word(w, v) {
    if (!this.t.startsWith(w, this.i)) this.fail();
    this.i += w.length;
    return v;
  }

  number() {
    const m = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
    m.lastIndex = this.i;
    const r = m.exec(this.t);
    if (!r) this.fail();
    this.i = m.lastIndex;
    if (r[1] === undefined && r[2] === undefined) {
      const digits = r[0].length - (r[0][0] === '-' ? 1 : 0);
      const n = digits > MAX_INT_DIGITS ? Infinity : Number(r[0]);
      if (Math.abs(n) > MAX_JSON_INTEGER) throw malformed('JSON integer out of range');
      return n;
    }
    return new JFloat(Number(r[0]));
  }

  string() {
    const t = this.t;
    let i = this.i + 1;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= t.length) this.fail();
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) this.fail();
      if (c === 0x5c) {
        out += t.slice(start, i);
        const e = t[i + 1];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[e];
        if (simple !== undefined) {
          out += simple;
          i += 2;
        } else if (e === 'u') {
          const hex = t.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail();
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else this.fail();
        start = i;
      } else i++;
    }
    out += t.slice(start, i);
    this.i = i + 1;
    return out;
  }

  array() {
    this.i++;
    const out = [];
    this.ws();
    if (this.t[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.t[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.fail();
    }
  }

  object() {
    this.i++;
    const out = Object.create(null);
    const keys = [];
    this.ws();
    if (this.t[this.i] === '}') {
      this.i++;
      Object.defineProperty(out, KEYS, { value: keys });
      return out;
    }
    for (;;) {
      this.ws();
      if (this.t[this.i] !== '"') this.fail();
      const k = this.string();
      this.ws();
      if (this.t[this.i++] !== ':') this.fail();
      const v = this.value();
      if (has(out, k)) throw malformed('duplicate JSON member name');
      out[k] = v;
      keys.push(k);
      this.ws();
      const c = this.t[this.i++];
      if (c === '}') break;
      if (c !== ',') this.fail();
    }
    Object.defineProperty(out, KEYS, { value: keys });
    return out;
  }
}

export function parseText(text) {
  checkDepth(text);
  const p = new Parser(text);
  let v;
  try {
    v = p.value();
    p.ws();
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw malformed('invalid JSON');
  }
  if (p.i !== text.length) throw malformed('invalid JSON');
  return v;
}

export function loads(bytes) {
  return parseText(decodeUtf8(bytes));
}

export function loadsObject(bytes) {
  const v = loads(bytes);
  if (!isObj(v)) throw malformed('expected a JSON object');
  return v;
}

// For display and result objects: plain JSON-compatible values.
export function plain(v) {
  if (v instanceof JFloat) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const k of keysOf(v)) Object.defineProperty(o, k, { value: plain(v[k]), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}
