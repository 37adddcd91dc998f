import assert from "node:assert/strict";
import { it } from "node:test";
import { CallCancelled } from "./errors.js";
import { PoolShare } from "./pool-share.js";

/** gate is a promise the test resolves when it wants. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const live = new AbortController().signal;
const tick = () => new Promise((resolve) => setImmediate(resolve));

it("runs at most its size at once, the rest in the order they came", async () => {
  const share = new PoolShare(2);
  const gates = [gate(), gate(), gate(), gate()];
  const started: number[] = [];
  const runs = gates.map((g, i) =>
    share.run(live, async () => {
      started.push(i);
      await g.opened;
      return i;
    }),
  );
  await tick();
  assert.deepEqual(started, [0, 1]);
  assert.equal(share.waiting, 2);
  gates[1]!.open();
  await tick();
  assert.deepEqual(started, [0, 1, 2]);
  gates[0]!.open();
  gates[2]!.open();
  gates[3]!.open();
  assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
  assert.equal(share.waiting, 0);
});

it("gives the slot of a failed run to the next, and lets a waiter whose call ends leave the line", async () => {
  const share = new PoolShare(1);
  const first = gate();
  const failing = share.run(live, async () => {
    await first.opened;
    throw new Error("statement failed");
  });
  const cancel = new AbortController();
  const leaving = share.run(cancel.signal, async () => assert.fail("a cancelled waiter never runs"));
  const last = share.run(live, async () => "ran");
  await tick();
  assert.equal(share.waiting, 2);
  cancel.abort();
  await assert.rejects(leaving, CallCancelled);
  assert.equal(share.waiting, 1);
  first.open();
  await assert.rejects(failing, /statement failed/);
  assert.equal(await last, "ran");
  // The slot is back: of two more, one runs and one waits, and both finish.
  const again = gate();
  const both = [share.run(live, () => again.opened), share.run(live, () => again.opened)];
  await tick();
  assert.equal(share.waiting, 1);
  again.open();
  await Promise.all(both);
  await assert.rejects(
    share.run(cancel.signal, async () => 1),
    CallCancelled,
    "an ended call does not start",
  );
});
