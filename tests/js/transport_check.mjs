// Runs webapps/lib/transport.js over cases Python wrote (argv[2], JSON) and
// prints what it made of each, for tests/test_webapps_lib.py to compare.
import { readFileSync } from 'node:fs';
import { decode, encode, DICTIONARY_V1 } from '../../webapps/lib/transport.js';

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const run = (f) => {
  try {
    return { ok: f() };
  } catch (exc) {
    return { reason: exc.code ?? `uncaught ${exc.name}: ${exc.message}` };
  }
};
const out = {
  dictionary: Buffer.from(DICTIONARY_V1).toString('base64'),
  encoded: cases.encode.map((compact) => run(() => encode(compact))),
  decoded: cases.decode.map((text) => run(() => decode(text))),
};
process.stdout.write(JSON.stringify(out));
