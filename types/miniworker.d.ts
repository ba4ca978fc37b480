// Types for mini-program code run by miniworker (docs/runtime.md,
// docs/spec.md sections 2-5): the `worker` global of a worker file, and `wx`,
// `App` and `getApp` of the main thread (app.js). Both contexts also have
// `require`, `console`, timers and `queueMicrotask`.

/** A value `postMessage` can copy (structured clone, docs/spec.md section 4). */
type MiniworkerCloneable =
  | undefined | null | boolean | number | bigint | string
  | Date | RegExp | ArrayBuffer | ArrayBufferView | Error
  | MiniworkerCloneable[]
  | Map<MiniworkerCloneable, MiniworkerCloneable>
  | Set<MiniworkerCloneable>
  | { [key: string]: MiniworkerCloneable | ((...args: any[]) => any) | symbol };

/**
 * Why a worker was killed. The limits, per context (defaults; a host can
 * change them):
 * - `memory`: 64 MiB of linear memory;
 * - `cpu-time`: 60 s of the thread's CPU time in one turn;
 * - `stack`: a WebAssembly stack overflow despite QuickJS's own 512 KiB
 *   stack check (deeper recursion normally throws a catchable `RangeError`);
 * - `test`: `worker.testOnProcessKilled()`;
 * - `crash`: any other trap, or a guest breaking the host protocol.
 * Also limited, with an exception at the caller instead of a kill: messages
 * of 16 MiB (`RangeError`), 10,000 queued messages or 64 MiB per direction
 * (`Error`), 10,000 live timers (`RangeError`), 1 MiB of console per turn
 * (lines dropped).
 */
type MiniworkerKillReason = 'memory' | 'cpu-time' | 'stack' | 'test' | 'crash';

interface MiniworkerKillInfo {
  reason: MiniworkerKillReason;
  message: string;
}

/** An uncaught exception or unhandled rejection in the worker. */
interface MiniworkerErrorInfo {
  message: string;
  stack: string;
  /** Project-relative, with a leading `/` (`/workers/a.js`), or empty. */
  filename: string;
  /** 1-based, or 0 when unknown. */
  lineno: number;
}

/** The main thread's handle on a worker (`wx.createWorker`). */
interface MiniworkerWorker {
  /** Copies `message` to the worker's `onMessage` listeners; a second argument is ignored. */
  postMessage(message: MiniworkerCloneable, transfer?: unknown[]): void;
  /** Adds a listener of the worker's messages; listeners run in order. */
  onMessage(callback: (message: any) => void): void;
  /** Adds a listener of the worker's uncaught errors. */
  onError(callback: (error: MiniworkerErrorInfo) => void): void;
  /** Adds a listener of the worker's kill (not of `terminate()`). */
  onProcessKilled(callback: (info: MiniworkerKillInfo) => void): void;
  /** Stops the worker at once; idempotent. */
  terminate(): void;
}

/** The `worker` global of a worker file. */
declare const worker: {
  /** Adds a listener of the main thread's messages. */
  onMessage(callback: (message: any) => void | Promise<void>): void;
  /** Copies `message` to the main thread's `onMessage` listeners. */
  postMessage(message: MiniworkerCloneable, transfer?: unknown[]): void;
  /** Kills this worker with reason `"test"`; nothing after it runs. */
  testOnProcessKilled(): never;
  /** Not supported by this host: throws. */
  getCameraFrameData(): never;
};

interface MiniworkerCreateWorkerOptions {
  useExperimentalWorker?: boolean;
}

interface MiniworkerPreDownloadOptions {
  packageType: 'workers';
  success?: (result: { errMsg: string }) => void;
  fail?: (error: { errMsg: string }) => void;
  complete?: () => void;
}

/** The main thread's `wx`: only the Worker API exists here. */
declare const wx: {
  /**
   * Starts the worker at `scriptPath` (project-relative, exactly an
   * existing `.js` file inside the workers directory). Throws when a worker
   * is already running: only one at a time.
   */
  createWorker(scriptPath: string, options?: MiniworkerCreateWorkerOptions): MiniworkerWorker;
  /** True only for the Worker API. */
  canIUse(name: string): boolean;
  preDownloadSubpackage(options: MiniworkerPreDownloadOptions): void;
};

interface MiniworkerLaunchOptions {
  path: string;
  query: Record<string, string>;
  scene: number;
  referrerInfo: Record<string, unknown>;
}

interface MiniworkerAppOptions {
  onLaunch?(this: MiniworkerAppOptions, options: MiniworkerLaunchOptions): void;
  onShow?(this: MiniworkerAppOptions, options: MiniworkerLaunchOptions): void;
  /** Main-thread uncaught errors, as text. */
  onError?(this: MiniworkerAppOptions, message: string): void;
  [key: string]: unknown;
}

/** Registers the app; a second call throws. */
declare function App(options: MiniworkerAppOptions): void;
/** The registered app. */
declare function getApp(): MiniworkerAppOptions;

/** CommonJS require: relative to the file, or to the project root. */
declare function require(path: string): any;

/** Each level prints the same way: the arguments formatted and joined by spaces. */
declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
};

declare function setTimeout<A extends unknown[]>(callback: (...args: A) => void, delay?: number, ...args: A): number;
declare function setInterval<A extends unknown[]>(callback: (...args: A) => void, delay?: number, ...args: A): number;
declare function clearTimeout(id?: number): void;
declare function clearInterval(id?: number): void;
declare function queueMicrotask(callback: () => void): void;
/** A copy by the message codec, as `postMessage` makes it (docs/spec.md section 4). */
declare function structuredClone<T>(value: T): T;

/** Milliseconds on the context's own clock, which starts with the context. */
declare const performance: { now(): number; readonly timeOrigin: number };

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}

declare class TextDecoder {
  constructor(label?: string);
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
