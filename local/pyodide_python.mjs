// Runs a Python program (its source on stdin) in Pyodide, CPython built for WebAssembly, with a
// folder of this machine mounted into Pyodide's file system. local/build.py uses it to write
// CPython 3.13 bytecode where no Python 3.13 is installed.
//
//   node pyodide_python.mjs <pyodide folder> <folder> [args...]
//
// The program sees sys.argv == ["-", <folder as mounted>, args...].
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideFolder, folder, ...args] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideFolder, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: pyodideFolder + path.sep });
const mounted = "/build";
pyodide.FS.mkdirTree(mounted);
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(folder) }, mounted);
pyodide.pyimport("sys").argv = pyodide.toPy(["-", mounted, ...args]);
pyodide.runPython(readFileSync(0, "utf8"));
