/**
 * A model object kept in a worker behind a handle (PyRef): trained once, used by many requests, never converted.
 * The model is a small scikit-style class (fit / predict / score) written with the standard library, so that the
 * example runs anywhere; a scikit-learn estimator is used the same way.
 *
 *   node --import tsx examples/model-handle.ts
 */
import { createPool, ConversionError } from '../src/index.js';

const MODEL = `
class LinearModel:
    """Least squares y = a*x + b, the scikit-learn way: fit() returns self, learned attributes end in _."""

    def fit(self, xs, ys):
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        self.coef_ = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        self.intercept_ = my - self.coef_ * mx
        return self

    def predict(self, xs):
        return [self.coef_ * x + self.intercept_ for x in xs]

    def score(self, xs, ys):
        mean = sum(ys) / len(ys)
        residual = sum((y - p) ** 2 for y, p in zip(ys, self.predict(xs)))
        return 1 - residual / sum((y - mean) ** 2 for y in ys)

    def __repr__(self):
        if not hasattr(self, 'coef_'):
            return 'LinearModel()'
        return 'LinearModel(coef_=%.3f, intercept_=%.3f)' % (self.coef_, self.intercept_)
`;

await using pool = await createPool({ workers: 2, setup: MODEL });

// The model object cannot cross to JavaScript: the error says so, and what to do instead.
try {
  await pool.eval('LinearModel()');
} catch (error) {
  if (error instanceof ConversionError) console.log('as a value:', error.message.split('. ')[0]);
}

// A handle: the object stays in its worker; its methods run there.
await using model = await pool.callRef('__main__', 'LinearModel');
console.log('handle to', model.typeName, 'on worker', model.workerId);
await model.callRef('fit', [[1, 2, 3, 4], [3, 5, 7, 9]]).then((self) => self.dispose()); // fit() returns self
console.log('model:', await model.repr());
console.log('coef_:', await model.get('coef_'), 'intercept_:', await model.get('intercept_'));
console.log('predict:', await model.call('predict', [[10, 20]]));

// Many requests share the one trained model (each call runs on the model's worker).
const tests = [[[5, 6], [11, 13]], [[7, 8], [15, 17.5]], [[0, 1], [1.5, 2.5]]];
const scores = await Promise.all(tests.map(([xs, ys]) => model.call('score', [xs, ys])));
console.log('scores:', scores.map((s: number) => s.toFixed(2)).join(', '));

// A handle passed to a function arrives as the object itself.
await pool.exec('def describe(m):\n    return type(m).__name__ + " with slope " + format(m.coef_, ".1f")');
console.log('describe:', await pool.call('__main__', 'describe', [model]));

// What the worker holds for handles shows in memoryStats.
const { totals } = await pool.memoryStats();
console.log('live handles:', totals.handles);
// `await using` disposes the model at the end of the block (or call model.dispose()).
