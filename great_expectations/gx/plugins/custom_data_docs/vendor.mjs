// Copy the files vendor.json names from node_modules/ (pinned by package-lock.json) into vendor/,
// with each package's licence. Run after `npm ci`: `npm run vendor`. vendor/ is committed, so
// serving the Data Docs needs no npm.
import { cpSync, readdirSync, readFileSync, rmSync } from "node:fs";

const here = (path) => new URL(path, import.meta.url);
const manifest = JSON.parse(readFileSync(here("vendor.json")));
const packageOf = (path) => path.split("/").slice(0, path.startsWith("@") ? 2 : 1).join("/");

rmSync(here("vendor"), { recursive: true, force: true });
const paths = new Set([...Object.values(manifest.vendor), ...manifest.with]);
for (const pkg of new Set([...paths].map(packageOf))) {
  for (const name of readdirSync(here(`node_modules/${pkg}`)).filter((n) => /^licen[cs]e/i.test(n))) {
    paths.add(`${pkg}/${name}`);
  }
}
for (const path of paths) cpSync(here(`node_modules/${path}`), here(`vendor/${path}`), { recursive: true });
console.log(`vendored ${Object.keys(manifest.vendor).length} URLs (${paths.size} files and folders) into vendor/`);
