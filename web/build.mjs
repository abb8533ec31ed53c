// Builds the viewer into dist/: our files from src/ plus OpenSeadragon's
// own build from node_modules (installed by `npm ci`, never kept in the
// repository).  Plain copies are enough: the page uses native ES modules.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const osd = join(here, "node_modules", "openseadragon", "build",
  "openseadragon");

if (!existsSync(osd)) {
  console.error(`build: ${osd} is missing; run "npm ci" in web/ first`);
  process.exit(1);
}

// A fresh dist/ so that files removed from src/ do not linger.
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
cpSync(join(here, "src"), dist, { recursive: true });
cpSync(osd, join(dist, "vendor", "openseadragon"), {
  recursive: true,
  filter: (p) => !p.endsWith(".map") && !/openseadragon\.js$/.test(p),
});
console.log(`build: viewer written to ${dist}`);
