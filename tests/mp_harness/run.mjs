// Run a MicroPython script on the official WebAssembly port under Node.
//
//   node tests/mp_harness/run.mjs [--heap BYTES] [--pystack WORDS] [--mount DIR]... SCRIPT.py
//
// A script that defines step() and DONE is then driven step by step (see below).
// Every regular file of each --mount DIR is copied into the MicroPython filesystem under /work
// (which is put first on sys.path), then SCRIPT.py runs as __main__.  stdout/stderr of the
// script are forwarded line by line.  Exit status: 0 on success, 1 when the script raised (the
// MicroPython traceback goes to stderr), 2 on usage errors.
// The port is found in $EDGEQ_MPWASM (a directory containing micropython.mjs) or
// build/mpwasm/node_modules/@micropython/micropython-webassembly-pyscript/.
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const pkgDir = process.env.EDGEQ_MPWASM ||
  path.join(root, "build", "mpwasm", "node_modules", "@micropython", "micropython-webassembly-pyscript");

const args = process.argv.slice(2);
let heap = 16 * 1024 * 1024, pystack = 4096, script = null;
const mounts = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--heap") heap = parseInt(args[++i], 10);
  else if (args[i] === "--pystack") pystack = parseInt(args[++i], 10);
  else if (args[i] === "--mount") mounts.push(args[++i]);
  else if (script === null) script = args[i];
  else { console.error(`run.mjs: unexpected argument ${args[i]}`); process.exit(2); }
}
if (script === null) {
  console.error("usage: run.mjs [--heap BYTES] [--pystack WORDS] [--mount DIR]... SCRIPT.py");
  process.exit(2);
}
const mjs = path.join(pkgDir, "micropython.mjs");
if (!fs.existsSync(mjs)) {
  console.error(`run.mjs: ${mjs} not found; npm install --prefix build/mpwasm @micropython/micropython-webassembly-pyscript`);
  process.exit(2);
}
const { loadMicroPython } = await import(url.pathToFileURL(mjs).href);
const mp = await loadMicroPython({
  heapsize: heap,
  pystack,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/work");
for (const dir of mounts) {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile()) mp.FS.writeFile("/work/" + name, fs.readFileSync(p));
  }
}
mp.runPython("import sys\nsys.path.insert(0, '/work')\n");
try {
  mp.runPython(fs.readFileSync(script, "utf8"));
  // Step protocol: a script that defines step() is driven from here, one call per step, until
  // step() sets DONE.  Returning to JavaScript between steps matters on this port: its garbage
  // collector only frees memory at the top level (it cannot scan the wasm stack mid-call).
  if (mp.globals.get("step") !== undefined && mp.globals.get("step") !== null) {
    while (!mp.globals.get("DONE")) mp.runPython("step()");
  }
} catch (e) {
  if (e.name === "PythonError") {
    if (e.type === "SystemExit") process.exit(0);
    process.stderr.write(e.message + "\n");
    process.exit(1);
  }
  throw e;
}
