// sse-reference.mjs is a deliberately plain event-stream parser for the
// fuzz test to compare rtkit.js's against: it takes the whole stream at
// once and follows the HTML Standard's "Parsing an event stream" step by
// step, with no care for speed.
export function parseWhole(stream) {
  const out = [];
  if (stream.charCodeAt(0) === 0xfeff) stream = stream.slice(1);
  let data = "", type = "", idBuf = "", lastId = "";
  let i = 0;
  const lines = [];
  let line = "";
  let complete = true;
  while (i < stream.length) {
    const ch = stream[i];
    if (ch === "\r") {
      lines.push(line); line = "";
      i += stream[i + 1] === "\n" ? 2 : 1;
    } else if (ch === "\n") {
      lines.push(line); line = "";
      i++;
    } else {
      line += ch;
      i++;
    }
  }
  complete = line === ""; // an unterminated last line is not processed
  for (const l of lines) {
    if (l === "") {
      lastId = idBuf;
      if (data === "") { type = ""; continue; }
      if (data.endsWith("\n")) data = data.slice(0, -1);
      out.push(["event", type || "message", data, lastId]);
      data = ""; type = "";
      continue;
    }
    if (l[0] === ":") {
      out.push(["comment", l.slice(1).startsWith(" ") ? l.slice(2) : l.slice(1)]);
      continue;
    }
    const colon = l.indexOf(":");
    let field = l, value = "";
    if (colon >= 0) {
      field = l.slice(0, colon);
      value = l.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
    }
    if (field === "event") type = value;
    else if (field === "data") data += value + "\n";
    else if (field === "id") { if (!value.includes("\0")) idBuf = value; }
    else if (field === "retry") { if (/^[0-9]+$/.test(value)) out.push(["retry", parseInt(value, 10)]); }
  }
  return { out, lastId, complete };
}
