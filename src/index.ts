export { createPool, Pool } from './pool/pool.js';
export type { PoolStats, WorkerStats, PoolEvents, WorkerExitEvent, OutputEvent, CloseOptions, DrainOptions, DrainResult, RecycleEvent, RecycleReason } from './pool/pool.js';
export type { PoolMetrics, WorkerMetrics, WorkerGcMetrics, CallOutcome, RecycleCounts } from './metrics/metrics.js';
export type { Histogram } from './metrics/histogram.js';
export { toPrometheus, PROMETHEUS_CONTENT_TYPE } from './metrics/prometheus.js';
export type { PrometheusOptions } from './metrics/prometheus.js';
export type { CallTraceContext } from './metrics/tracing.js';
export type { MeterProviderLike } from './metrics/opentelemetry.js';
export type { ContainerInfo } from './container.js';
export { Context } from './pool/context.js';
export { PyRef } from './pool/ref.js';
export type { HostFunction } from './worker/callbacks.js';
export { MemorySnapshot } from './memory/snapshot.js';
export type {
  GcGenerationStats,
  WorkerMemoryStats,
  HandleCounts,
  PoolMemoryStats,
  MemoryStatsOptions,
  GcGeneration,
  GcDebugFlag,
  GcDebugFlagName,
  GcDebugFlags,
  GarbageObject,
  GcGarbage,
  GcGarbageOptions,
  SnapshotGroupBy,
  SnapshotOptions,
  AllocationFrame,
  AllocationSite,
  AllocationDiff,
  CompareOptions,
  ReferrerInfo,
  ReferenceInfo,
  ReferencesOptions,
  PymallocStats,
  AllocatorInfo,
  AllocatorInfoOptions,
} from './memory/types.js';
export { PyStream } from './pool/stream.js';
export { py } from './pool/default-pool.js';
export { tuple, isTuple } from './protocol/tuple.js';
export { NDArray } from './protocol/ndarray.js';
export type { DType, TypedArray, TypedArrayOf } from './protocol/ndarray.js';
export { DataFrame, Series } from './protocol/dataframe.js';
export type { Column } from './protocol/dataframe.js';
export { MAX_DEPTH } from './protocol/encode.js';
export type { PoolOptions, CallOptions, StreamOptions, RecycleOptions, LoggingOptions, LogLevel, LogRecord } from './options.js';
export type { RemoteOptions } from './remote/options.js';
export { startAgent, Agent } from './remote/agent.js';
export type { AgentOptions, AgentPoolOptions, DrainOutcome } from './remote/agent.js';
export { parseSize, formatBytes } from './util/size.js';
export {
  PyWorkersError,
  ArgumentError,
  ArgumentRangeError,
  PythonError,
  ConversionError,
  TimeoutError,
  AbortError,
  WorkerCrashedError,
  WorkerStartError,
  ContextLostError,
  ContextClosedError,
  QueueFullError,
  PoolClosedError,
  PythonNotFoundError,
  NotTracingError,
  ProtocolError,
  RefLostError,
  RefDisposedError,
  RefWorkerError,
  RemoteError,
} from './errors.js';
export type { ErrorCode, PythonErrorInfo, WorkerExitInfo, RemoteReason } from './errors.js';
export type { MonitorOptions, MemorySample, MemoryEvent, PressureEvent } from './memory/monitor.js';
export type { LeakWorkload, FindLeaksOptions, LeakSite, LeakReport } from './memory/leaks.js';
