import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

let ticksPerSecond: number | undefined;

/** clockTicks is the kernel's USER_HZ (`getconf CLK_TCK`, normally 100): the unit of /proc/<pid>/stat's CPU times. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    let hz = NaN;
    try {
      hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch {
      // no getconf: Linux's USER_HZ is 100 on every common architecture
    }
    ticksPerSecond = Number.isSafeInteger(hz) && hz > 0 ? hz : 100;
  }
  return ticksPerSecond;
}

/**
 * cpuTicks reads a process's CPU time in clock ticks from /proc/<pid>/stat:
 * its own utime + stime (every thread, live or ended), or with `children`
 * cutime + cstime, the time of the children it has waited for. Undefined
 * where /proc is unavailable or the process is gone.
 */
export function cpuTicks(pid: number, children = false): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After "pid (comm) " come the fields from 3 (state) on; comm may hold spaces, so cut at its last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const at = children ? 13 : 11; // utime is field 14, stime 15, cutime 16, cstime 17
    return Number(fields[at]) + Number(fields[at + 1]);
  } catch {
    return undefined;
  }
}

/**
 * CpuTime measures the CPU a process (or its reaped children) spends over
 * one window, the way PeakMemory follows its memory: started by the
 * constructor, read by stop. The resolution is a clock tick (10 ms at 100
 * Hz) per window, so sum windows that are short.
 */
export class CpuTime {
  private readonly start: number | undefined;

  constructor(
    private readonly pid: number,
    private readonly children = false,
  ) {
    this.start = cpuTicks(pid, children);
  }

  /** stop returns the CPU spent since the start in microseconds (undefined when /proc is unavailable). */
  stop(): number | undefined {
    const end = cpuTicks(this.pid, this.children);
    if (this.start === undefined || end === undefined) return undefined;
    return ((end - this.start) * 1_000_000) / clockTicks();
  }
}

/** ThreadShare is one thread's time over a window: on a CPU, and runnable but waiting for one, as shares of the window. */
export interface ThreadShare {
  running: number;
  waiting: number;
}

/** schedstats reads every thread's nanoseconds on a CPU and waiting on a run queue (/proc/<pid>/task/<tid>/schedstat). */
function schedstats(pid: number): Map<string, [number, number]> {
  const threads = new Map<string, [number, number]>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [running, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
        threads.set(tid, [running!, waiting!]);
      } catch {
        // the thread ended
      }
    }
  } catch {
    // no /proc, or the process is gone
  }
  return threads;
}

/**
 * BusiestThread follows a process's threads over one window and tells how
 * the one that ran most spent it. A thread whose running and waiting for a
 * CPU fill the window was never idle: it, and the CPU it could get, bounded
 * the work, not what it would otherwise wait on (the network, the database).
 */
export class BusiestThread {
  private readonly start: Map<string, [number, number]>;
  private readonly started = performance.now();

  constructor(private readonly pid: number) {
    this.start = schedstats(pid);
  }

  /** stop returns the busiest thread's shares of the window (undefined without /proc). */
  stop(): ThreadShare | undefined {
    const windowNs = (performance.now() - this.started) * 1e6;
    let busiest: ThreadShare | undefined;
    for (const [tid, [running, waiting]] of schedstats(this.pid)) {
      const [running0, waiting0] = this.start.get(tid) ?? [0, 0];
      const share = { running: (running - running0) / windowNs, waiting: (waiting - waiting0) / windowNs };
      if (busiest === undefined || share.running > busiest.running) busiest = share;
    }
    return busiest;
  }
}
