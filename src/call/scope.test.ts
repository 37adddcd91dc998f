import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, it } from "node:test";
import { Cancellation, currentCall, runInCall, unbound } from "./scope.js";
import type { CallScope } from "./scope.js";

describe("Cancellation", () => {
  it("calls each listener once, with the first reason kept; a removed listener is not called", () => {
    const cancellation = new Cancellation();
    const heard: string[] = [];
    cancellation.onAbort(() => heard.push(`a ${String(cancellation.reason)}`));
    const stop = cancellation.onAbort(() => heard.push("removed"));
    cancellation.onAbort(() => heard.push(`b ${String(cancellation.aborted)}`));
    stop();
    cancellation.abort("first");
    cancellation.abort("second");
    assert.deepEqual(heard, ["a first", "b true"]);
    assert.equal(cancellation.reason, "first");
    // Too late to hear it: a listener added after the abort is never called (the caller checks `aborted`).
    cancellation.onAbort(() => heard.push("late"))();
    assert.deepEqual(heard, ["a first", "b true"]);
  });

  it("hands out an AbortSignal that aborts with the call, whether asked for before or after", async () => {
    const before = new Cancellation();
    const signal = before.signal;
    assert.equal(signal, before.signal, "one signal per cancellation");
    assert.equal(signal.aborted, false);
    const aborted = once(signal, "abort");
    before.abort("gone");
    await aborted;
    assert.equal(signal.reason, "gone");

    const after = new Cancellation();
    after.abort("ended");
    assert.equal(after.signal.aborted, true);
    assert.equal(after.signal.reason, "ended");
  });

  it("is not the one of unbound work, which no caller's abort reaches", async () => {
    const cancellation = new Cancellation();
    const scope = { cancellation, deadline: Date.now() + 1000 } as unknown as CallScope;
    await runInCall(scope, () =>
      unbound(async () => {
        const inner = currentCall()!;
        cancellation.abort("caller left");
        assert.equal(inner.cancellation.aborted, false);
        assert.equal(inner.deadline, undefined);
        assert.equal(inner.cancellation.signal.aborted, false);
      }),
    );
  });
});
