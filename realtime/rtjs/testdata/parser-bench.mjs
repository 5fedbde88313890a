// parser-bench.mjs measures rtkit.js's event-stream parser on one large
// event split into chunks, the way fetch streaming hands a big message to
// the SSE transport:
//
//   node realtime/rtjs/testdata/parser-bench.mjs [path/to/rtkit.js]
//
// It prints the time to parse a 1 MiB and a 4 MiB event in 16 KiB chunks
// (the median of a few runs) and checks that the event came out whole.
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const src = process.argv[2] ? pathToFileURL(resolve(process.argv[2])).href : new URL("../rtkit.js", import.meta.url).href;
const { EventStreamParser } = await import(src);

function once(size, chunk) {
  const text = "data: " + "x".repeat(size) + "\n\n";
  let got = 0;
  const p = new EventStreamParser((ev) => { got = ev.data.length; });
  const t0 = performance.now();
  for (let i = 0; i < text.length; i += chunk) p.push(text.slice(i, i + chunk));
  const ms = performance.now() - t0;
  if (got !== size) throw new Error(`event of ${got} characters, want ${size}`);
  return ms;
}

for (const mib of [1, 4]) {
  const runs = [];
  for (let i = 0; i < (mib === 1 ? 5 : 3); i++) runs.push(once(mib << 20, 16 << 10));
  runs.sort((a, b) => a - b);
  console.log(`${mib} MiB event in 16 KiB chunks: ${runs[runs.length >> 1].toFixed(1)} ms (runs: ${runs.map((r) => r.toFixed(1)).join(", ")})`);
}
