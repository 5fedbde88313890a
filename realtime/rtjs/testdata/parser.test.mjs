// Unit tests of rtkit.js's event-stream parser, run by node's test runner
// (node --test realtime/rtjs/testdata/parser.test.mjs; TestNodeParser runs
// them from go test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventStreamParser } from "../rtkit.js";

function collect(maxEventSize) {
  const out = [];
  const p = new EventStreamParser(
    (e) => out.push(e.type + "|" + e.data + "|" + e.id),
    (c) => out.push("#" + c),
    (r) => out.push("retry " + r),
    maxEventSize,
  );
  return { p, out };
}

const corners = "\ufeffdata: a\r\ndata:b\r\n\r\n: comment\nid: 1.5\nevent: gap\ndata: {\"after\":1}\n\nid: x\0y\rdata\r\rretry: 99x\nretry: 250\ndata:  two spaces\n\nunknown: f\nevent: e\n\ndata: last\n\n";
const cornersWant = ["message|a\nb|", "#comment", "gap|{\"after\":1}|1.5", "message||1.5", "retry 250", "message| two spaces|1.5", "message|last|1.5"];

test("the HTML Standard's corner cases, split at every point", () => {
  for (let cut = 0; cut <= corners.length; cut++) {
    const { p, out } = collect();
    p.push(corners.slice(0, cut));
    p.push(corners.slice(cut));
    assert.deepEqual(out, cornersWant, "cut at " + cut);
  }
});

test("one character at a time", () => {
  const { p, out } = collect();
  for (const ch of corners) p.push(ch);
  assert.deepEqual(out, cornersWant);
});

test("CRLF split across chunks is one line end", () => {
  const { p, out } = collect();
  for (const c of ["data: x\r", "\n", "\r", "\n"]) p.push(c);
  assert.deepEqual(out, ["message|x|"]);
  const q = collect();
  for (const c of ["data: x\r", "\r"]) q.p.push(c); // CR CR: two line ends
  assert.deepEqual(q.out, ["message|x|"]);
});

test("an unterminated line waits for its end", () => {
  const { p, out } = collect();
  p.push("data: hel");
  p.push("lo\n");
  assert.deepEqual(out, []);
  p.push("\n");
  assert.deepEqual(out, ["message|hello|"]);
});

// The chunkings that made the old parser quadratic, and others that could
// trip a linear one: the characters examined stay within a small constant
// per input character (each is looked at once for CR and once for LF).
const pathologies = {
  "4 MiB event in 16 KiB chunks": () => chunks("data: " + "x".repeat(4 << 20) + "\n\n", 16 << 10),
  "1 MiB event one character at a time": () => chunks("data: " + "y".repeat(1 << 20) + "\n\n", 1),
  "100,000 short lines in one chunk": () => ["data: a\n".repeat(100000) + "\n"],
  "LF-only lines, no CR anywhere": () => chunks(("data: z\n\n").repeat(20000), 4096),
  "CR-only lines, no LF anywhere": () => chunks(("data: z\r\r").repeat(20000), 4096),
  "CRLF split at every chunk boundary": () => {
    const out = [];
    for (let i = 0; i < 20000; i++) out.push("data: " + i + "\r", "\n\r", "\n");
    return out;
  },
  "a huge comment in 1 KiB chunks": () => chunks(":" + "c".repeat(2 << 20) + "\n", 1024),
  "many data lines making one big event": () => chunks("data: 0123456789\n".repeat(200000) + "\n", 16 << 10),
};

function chunks(s, size) {
  const out = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

for (const [name, make] of Object.entries(pathologies)) {
  test("work per byte: " + name, () => {
    const parts = make();
    const total = parts.reduce((n, c) => n + c.length, 0);
    let events = 0;
    const p = new EventStreamParser(() => events++, () => {}, () => {});
    for (const c of parts) p.push(c);
    assert.ok(events > 0 || name.includes("comment"), "no event parsed");
    // 2 scans per character, plus one per line end and per chunk (a search
    // that finds nothing still counts the end it reached).
    const bound = 2 * total + 2 * parts.length;
    assert.ok(p.scanned <= bound, `${p.scanned} characters examined for ${total} (bound ${bound}): ${(p.scanned / total).toFixed(2)} per character`);
  });
}

test("an event over maxEventSize throws, in one line or many", () => {
  const max = 1000;
  const ok = collect(max);
  ok.p.push("data: " + "a".repeat(max - 10) + "\n\n");
  assert.equal(ok.out.length, 1);
  assert.throws(() => collect(max).p.push("data: " + "a".repeat(max + 1)), RangeError, "a partial line over the cap");
  const many = collect(max);
  assert.throws(() => { for (let i = 0; i < 200; i++) many.p.push("data: 0123456789\n"); }, RangeError, "data lines adding up over the cap");
  const slow = collect(max);
  assert.throws(() => { for (let i = 0; i < 2 * max; i++) slow.p.push("b"); }, RangeError, "a line arriving a character at a time");
  // The cap is per event: many events under it pass.
  const events = collect(max);
  for (let i = 0; i < 100; i++) events.p.push("data: " + "e".repeat(max - 20) + "\n\n");
  assert.equal(events.out.length, 100);
});

test("the default cap is 8 Mi characters", () => {
  const { p } = collect();
  assert.equal(p.maxEventSize, 8 << 20);
});
