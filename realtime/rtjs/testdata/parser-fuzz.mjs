// parser-fuzz.mjs checks rtkit.js's event-stream parser against a plain
// reference (sse-reference.mjs) on random streams cut into random chunks:
// a seeded generator and a mutation loop over the inputs that came before,
// for a bounded number of iterations.
//
//   node realtime/rtjs/testdata/parser-fuzz.mjs [iterations] [seed]
//
// It prints the executions it survived, or the first input on which the
// two disagree (as JSON) and exits 1.
import { EventStreamParser } from "../rtkit.js";
import { parseWhole } from "./sse-reference.mjs";

const iterations = Number(process.argv[2] || 10000);
let seed = Number(process.argv[3] || 1) >>> 0;

// mulberry32: small, seeded, good enough to explore.
function rand() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const tokens = ["data", "data:", "data: ", "event:", "event: gap", "id:", "id: 7", "retry:", "retry: 250", "retry: 9x",
  ":", ": ping", " ", "\r", "\n", "\r\n", "\n\n", "\r\r", "\0", "\ufeff", "x", "héllo", "😀", "a:b", "::", "99"];

function generate() {
  const n = 1 + Math.floor(rand() * 40);
  let s = "";
  for (let i = 0; i < n; i++) s += rand() < 0.8 ? pick(tokens) : String.fromCharCode(Math.floor(rand() * 128));
  return s;
}

function mutate(s) {
  const i = Math.floor(rand() * (s.length + 1));
  switch (Math.floor(rand() * 4)) {
    case 0: return s.slice(0, i) + pick(tokens) + s.slice(i);
    case 1: return s.slice(0, i) + s.slice(i + 1 + Math.floor(rand() * 4));
    case 2: { const j = Math.floor(rand() * (s.length + 1)); return s + s.slice(Math.min(i, j), Math.max(i, j)); }
    default: return s.slice(0, i) + "\n" + s.slice(i);
  }
}

function chunked(s) {
  const out = [];
  for (let i = 0; i < s.length;) {
    const n = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * 8);
    out.push(s.slice(i, i + n));
    i += n;
  }
  if (rand() < 0.2) out.splice(Math.floor(rand() * (out.length + 1)), 0, ""); // an empty chunk
  return out;
}

function viaParser(chunks) {
  const out = [];
  const p = new EventStreamParser(
    (e) => out.push(["event", e.type, e.data, e.id]),
    (c) => out.push(["comment", c]),
    (r) => out.push(["retry", r]),
  );
  for (const c of chunks) p.push(c);
  return { out, lastId: p.lastId };
}

const corpus = [];
let ran = 0;
for (let i = 0; i < iterations; i++) {
  const input = corpus.length > 0 && rand() < 0.5 ? mutate(pick(corpus)) : generate();
  const chunks = chunked(input);
  const want = parseWhole(input);
  const got = viaParser(chunks);
  ran++;
  if (JSON.stringify(got.out) !== JSON.stringify(want.out) || got.lastId !== want.lastId) {
    console.log(JSON.stringify({ input, chunks, got, want }));
    process.exit(1);
  }
  if (corpus.length < 256) corpus.push(input);
  else corpus[Math.floor(rand() * corpus.length)] = input;
}
console.log(`${ran} executions, no disagreement (seed ${process.argv[3] || 1})`);
