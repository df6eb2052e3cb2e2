// The local model's inference thread (see LocalEmbedder in local.ts). Plain JavaScript so that it
// starts the same way under node, tsx and vitest, with nothing to compile.
//
// ONNX Runtime's Node binding runs a session synchronously on the calling thread; in the main
// thread every batch froze the event loop, so extraction, chunking and store writes could only
// run between batches. Here they run beside it.
import { parentPort, workerData } from 'node:worker_threads';
import { AutoConfig, AutoModel, AutoTokenizer, ModelFileNotFoundError, Tensor, env } from '@huggingface/transformers';

const { id, options, settings, pooling, maxTokens } = workerData;

function describe(err) {
  return {
    message: err instanceof Error ? err.message : String(err),
    notFound: err instanceof ModelFileNotFoundError,
    status: err instanceof ModelFileNotFoundError ? err.status : undefined,
  };
}

let tokenizer;
let model;
try {
  Object.assign(env, settings);
  const config = await AutoConfig.from_pretrained(id, options);
  [tokenizer, model] = await Promise.all([
    AutoTokenizer.from_pretrained(id, options),
    AutoModel.from_pretrained(id, { ...options, config }),
  ]);
  parentPort.postMessage({ type: 'ready', acceptsIds: idsMatchTokenizer() });
} catch (err) {
  parentPort.postMessage({ type: 'failed', error: describe(err) });
}

// One request at a time, in arrival order (the embedder sends the next only after this one's answer).
let chain = Promise.resolve();
parentPort.on('message', (msg) => {
  chain = chain.then(() => handle(msg));
});

async function handle(msg) {
  if (msg.type === 'close') {
    await model?.dispose().catch(() => undefined);
    parentPort.close();
    return;
  }
  try {
    const inputs = msg.type === 'runIds' ? fromIds(msg.ids, msg.lengths) : tokenizer(msg.texts, { padding: true, truncation: true, max_length: maxTokens });
    const outputs = await infer(inputs);
    const { data, dimension } = pool(outputs, inputs.attention_mask, pooling);
    parentPort.postMessage({ type: 'vectors', id: msg.id, data, dimension }, [data.buffer]);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: msg.id, error: describe(err) });
  }
}

/**
 * The model's inputs built from token ids the caller already has (LocalEmbedder keeps the ids the
 * chunker's exact counts produced), padded the way the tokenizer pads a batch: the text is not
 * tokenized a second time here. `ids` holds the sequences one after another; none exceeds maxTokens.
 */
function fromIds(ids, lengths) {
  const n = lengths.length;
  const width = lengths.reduce((m, l) => Math.max(m, l), 0);
  const inputIds = new BigInt64Array(n * width).fill(BigInt(tokenizer.pad_token_id ?? 0));
  const mask = new BigInt64Array(n * width);
  const left = tokenizer.padding_side === 'left';
  for (let i = 0, o = 0; i < n; o += lengths[i], i++) {
    const start = i * width + (left ? width - lengths[i] : 0);
    for (let t = 0; t < lengths[i]; t++) {
      inputIds[start + t] = BigInt(ids[o + t]);
      mask[start + t] = 1n;
    }
  }
  return {
    input_ids: new Tensor('int64', inputIds, [n, width]),
    attention_mask: new Tensor('int64', mask, [n, width]),
  };
}

/**
 * The model's outputs for `inputs`. An export that already pools (a `sentence_embedding` output)
 * is asked for that output alone: the token embeddings beside it are batch × tokens × dimension
 * floats (8 MB for 32 texts of 128 tokens) that would be copied out of ONNX Runtime into a fresh
 * buffer on every batch only to be dropped, and as external memory they set off full collections
 * of this thread's heap every few batches, on the thread the model runs on.
 */
async function infer(inputs) {
  const session = model.sessions?.model;
  const pooled = session?.outputNames?.includes('sentence_embedding') && session.inputNames.every((n) => inputs[n]);
  if (!pooled) return model(inputs);
  const feeds = Object.fromEntries(session.inputNames.map((n) => [n, inputs[n].ort_tensor]));
  const out = await session.run(feeds, ['sentence_embedding']);
  // pool() takes it only as batch × dimension; any other shape is pooled from the token embeddings.
  return out.sentence_embedding?.dims.length === 2 ? out : model(inputs);
}

/**
 * Whether fromIds gives exactly what the tokenizer gives for the same texts (same keys, shapes and
 * values); a tokenizer that adds token type ids or pads differently keeps tokenizing here instead.
 */
function idsMatchTokenizer() {
  const samples = ['Hello, world!', 'a', 'Ünïcödé — 東京 🙂 and a somewhat longer second line\n\nwith a paragraph break', ' leading and trailing spaces ']
    .filter((t) => tokenizer.encode(t).length <= maxTokens);
  if (samples.length < 2) return false;
  const expected = tokenizer(samples, { padding: true, truncation: true, max_length: maxTokens });
  const encoded = samples.map((t) => tokenizer.encode(t));
  const built = fromIds(Int32Array.from(encoded.flat()), Int32Array.from(encoded.map((e) => e.length)));
  const keys = Object.keys(expected);
  if (keys.length !== Object.keys(built).length) return false;
  return keys.every((k) => built[k] && built[k].type === expected[k].type &&
    String(built[k].dims) === String(expected[k].dims) &&
    built[k].data.every((v, i) => v === BigInt(expected[k].data[i])));
}

/** n unit vectors of d values, row after row (a zero vector stays zero: it has no direction). */
function pool(outputs, mask, how) {
  const sentence = outputs.sentence_embedding;
  if (sentence && sentence.dims.length === 2) {
    // The export already pooled the way the model was trained.
    const [n, d] = sentence.dims;
    const out = Float64Array.from(sentence.data);
    for (let i = 0; i < n; i++) normalise(out, i * d, d);
    return { data: out, dimension: d };
  }
  const hidden = outputs.last_hidden_state ?? outputs.token_embeddings ?? outputs.logits;
  if (!hidden || hidden.dims.length !== 3) throw new Error('Model output has no token embeddings to pool');
  const [n, seq, d] = hidden.dims;
  const data = hidden.data;
  const maskData = mask.data;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    if (how === 'cls') {
      const base = i * seq * d;
      for (let k = 0; k < d; k++) out[o + k] = data[base + k];
    } else {
      let count = 0;
      for (let t = 0; t < seq; t++) {
        if (Number(maskData[i * seq + t]) === 0) continue;
        count++;
        const base = (i * seq + t) * d;
        for (let k = 0; k < d; k++) out[o + k] += data[base + k];
      }
      if (count > 0) for (let k = 0; k < d; k++) out[o + k] /= count;
    }
    normalise(out, o, d);
  }
  return { data: out, dimension: d };
}

function normalise(v, offset, d) {
  let sum = 0;
  for (let k = 0; k < d; k++) sum += v[offset + k] * v[offset + k];
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let k = 0; k < d; k++) v[offset + k] /= norm;
}
