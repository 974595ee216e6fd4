// A link that carries only so much, for the tests of bandwidth adaptation: a network namespace
// joined to this one by a veth pair, with a token-bucket filter (`tc tbf`) on what flows into
// it, and a Chromium that runs inside it. The sfu listens on this side's address; pages in the
// namespace reach it through the filtered link, pages outside directly. Needs root (CI runs
// as root) and a kernel with network namespaces.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const run = (...args) => execFileSync(args[0], args.slice(1), { stdio: ["ignore", "ignore", "pipe"] });

/** Creates the namespace and its link (addresses 10.77.N.1 here, 10.77.N.2 inside; N from
 * this process's id, so parallel runs do not collide). */
export function constrainedLink() {
  const n = process.pid % 250;
  const ns = `e2ee-low-${process.pid}`;
  const outer = `e2ee-h${n}`;
  const inner = `e2ee-n${n}`;
  const host = `10.77.${n}.1`;
  try {
    run("ip", "netns", "add", ns);
    run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner);
    run("ip", "link", "set", inner, "netns", ns);
    run("ip", "addr", "add", `${host}/24`, "dev", outer);
    run("ip", "link", "set", outer, "up");
    run("ip", "netns", "exec", ns, "ip", "addr", "add", `10.77.${n}.2/24`, "dev", inner);
    run("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up");
    run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
  } catch (e) {
    remove(ns, outer);
    throw new Error(`cannot make a network namespace (root and ip/tc needed): ${e.stderr ?? e.message}`);
  }
  // A wrapper the browser launcher runs as "Chromium": the real one, inside the namespace.
  const dir = mkdtempSync(join(tmpdir(), "netns-"));
  const chromium = join(dir, "chromium");
  writeFileSync(chromium, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  chmodSync(chromium, 0o755);
  return {
    host,
    chromium,
    /** What flows into the namespace is held to `kbit` per second, with 200 ms of queue. */
    limit: (kbit) => {
      run("tc", "qdisc", "replace", "dev", outer, "root", "tbf", "rate", `${kbit}kbit`,
        "burst", "4kb", "latency", "200ms");
    },
    /** No limit any more. */
    unlimit: () => run("tc", "qdisc", "del", "dev", outer, "root"),
    remove: () => remove(ns, outer),
  };
}

function remove(ns, outer) {
  for (const args of [["ip", "link", "del", outer], ["ip", "netns", "del", ns]]) {
    try {
      run(...args);
    } catch {
      // Already gone.
    }
  }
}
