/**
 * Arrays: typed arrays and NDArray into numpy, numpy arrays and scalars back, pandas frames column-wise, and a
 * large array's round trip. Needs numpy (and, for the last part, pandas) in the interpreter:
 *
 *   node --import tsx examples/arrays.ts                               # python3
 *   PYWORKERS_PYTHON=/usr/bin/python3 node --import tsx examples/arrays.ts   # Debian's python3-numpy / python3-pandas
 */
import { createPool, DataFrame, NDArray } from '../src/index.js';

await using pool = await createPool({ workers: 1, setup: 'import numpy as np' }).catch((error: Error) => {
  console.error(`This example needs numpy in the interpreter (${error.message.split('\n')[0]})`);
  process.exit(1);
});

// Typed arrays arrive as arrays of their element type: numpy takes them as they are.
console.log('mean:', await pool.call('numpy', 'mean', [new Float64Array([1, 2, 3])])); // 2
console.log('arrives as:', await pool.eval('(type(x).__name__, x.format, np.asarray(x).dtype.str)', { x: new Int32Array([1, 2]) }));

// An NDArray carries a shape; numpy arrays come back as NDArrays (C order, this machine's byte order).
const a = new NDArray(new Float64Array([1, 2, 3, 4]), [2, 2]);
const product = (await pool.eval('np.asarray(a) @ np.asarray(a)', { a })) as NDArray<'float64'>;
console.log('a @ a:', product.dtype, product.shape, product.toArray()); // float64 [2, 2] [[7, 10], [15, 22]]

// numpy scalars are the numbers they stand for.
console.log('scalars:', await pool.eval('[np.float64(1.5), np.int64(7), np.bool_(True), np.datetime64("2024-01-02")]'));

// With arrays: 'numpy' typed arrays arrive as ndarrays instead of memoryviews.
{
  await using numpyPool = await createPool({ workers: 1, arrays: 'numpy' });
  console.log("with arrays: 'numpy':", await numpyPool.eval('(type(x).__name__, x.shape)', { x: new NDArray(new Int16Array(6), [3, 2]) }));
}

// A large array travels as it is: written from its memory, read straight into the value on the other side.
const big = new Float64Array(4 * 1024 * 1024).map((_, i) => i); // 32 MiB
const t0 = performance.now();
const doubled = (await pool.eval('np.asarray(x) * 2', { x: big })) as NDArray<'float64'>;
console.log(`32 MiB there and back: ${(performance.now() - t0).toFixed(1)} ms; last element ${doubled.data[big.length - 1]}`);

// pandas: a DataFrame comes back column by column, and goes back as a DataFrame.
await pool.exec('try:\n    import pandas as pd\nexcept ImportError:\n    pd = None');
if (await pool.eval('pd is not None')) {
  const df = (await pool.eval('pd.DataFrame({"price": np.linspace(1, 2, 5), "ticker": list("ABCDE")})')) as DataFrame;
  console.log('columns:', df.columns, 'price:', df.column('price'), 'first row:', df.toRecords()[0]);
  console.log('described in Python:', await pool.eval('d.describe().loc["mean", "price"]', { d: df }));
} else {
  console.log('(pandas is not installed: the DataFrame part is skipped)');
}
