import { readFileSync, writeFileSync } from "node:fs";

function statusField(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PeakMemory follows a process's peak resident set over one measurement:
 * Linux's VmHWM, reset at the start through /proc/<pid>/clear_refs ("5"), or
 * where that is not allowed, the largest VmRSS seen by polling.
 */
export class PeakMemory {
  private polled = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly hwmReset: boolean;

  constructor(private readonly pid: number) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  private sample() {
    this.polled = Math.max(this.polled, statusField(this.pid, "VmRSS") ?? 0);
  }

  /** stop ends the measurement and returns the peak in bytes (undefined when /proc is unavailable). */
  stop(): number | undefined {
    clearInterval(this.timer);
    this.sample();
    const hwm = this.hwmReset ? statusField(this.pid, "VmHWM") : undefined;
    const peak = Math.max(hwm ?? 0, this.polled);
    return peak > 0 ? peak : undefined;
  }
}
