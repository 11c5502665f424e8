// A long-lived MicroPython (official WebAssembly port) driven over stdin/stdout, standing in for
// mpremote's raw-REPL transport of a real board (tests/test_boards_dag.py's WasmTransport).
//
//   node tests/mp_harness/repl.mjs [--heap BYTES] [--mount DIR]
//
// Every regular file of DIR is copied to /work (first on sys.path, and the working directory).
// Then one JSON request per stdin line, one JSON answer per stdout line:
//   {"exec": CODE}               -> {"ok": true, "out": STDOUT} | {"ok": false, "error": TEXT}
//   {"write": NAME, "b64": DATA} -> {"ok": true}   (a file under /work)
// The port is found as in run.mjs ($EDGEQ_MPWASM or build/mpwasm/...).
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const pkgDir = process.env.EDGEQ_MPWASM ||
  path.join(root, "build", "mpwasm", "node_modules", "@micropython", "micropython-webassembly-pyscript");
const args = process.argv.slice(2);
let heap = 16 * 1024 * 1024, mount = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--heap") heap = parseInt(args[++i], 10);
  else if (args[i] === "--mount") mount = args[++i];
  else { console.error(`repl.mjs: unexpected argument ${args[i]}`); process.exit(2); }
}
const { loadMicroPython } = await import(url.pathToFileURL(path.join(pkgDir, "micropython.mjs")).href);
let captured = [];
const mp = await loadMicroPython({
  heapsize: heap,
  pystack: 4096,
  stdout: (line) => captured.push(line),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/work");
if (mount) {
  for (const name of fs.readdirSync(mount)) {
    const p = path.join(mount, name);
    if (fs.statSync(p).isFile()) mp.FS.writeFile("/work/" + name, fs.readFileSync(p));
  }
}
mp.runPython("import sys, os\nsys.path.insert(0, '/work')\nos.chdir('/work')\n");
const reply = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  if (req.write !== undefined) {
    mp.FS.writeFile("/work/" + req.write, Buffer.from(req.b64, "base64"));
    reply({ ok: true });
    continue;
  }
  captured = [];
  try {
    mp.runPython(req.exec);
    reply({ ok: true, out: captured.join("\n") + (captured.length ? "\n" : "") });
  } catch (e) {
    reply({ ok: false, error: e.name === "PythonError" ? e.message : String(e) });
  }
}
