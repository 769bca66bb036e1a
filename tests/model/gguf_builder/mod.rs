//! Writes small GGUF files in memory for tests.

/// A GGUF under construction: metadata and tensors, laid out on `build`.
pub struct GgufBuilder {
    version: u32,
    alignment: u64,
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl GgufBuilder {
    pub fn new(version: u32) -> Self {
        GgufBuilder {
            version,
            alignment: 32,
            kv: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }

    /// Sets `general.alignment`.
    pub fn alignment(&mut self, alignment: u32) {
        self.alignment = alignment.into();
        self.kv_u32("general.alignment", alignment);
    }

    /// A metadata entry of GGUF value type `ty` with pre-encoded `value`.
    pub fn kv_raw(&mut self, key: &str, ty: u32, value: &[u8]) {
        push_str(&mut self.kv, key);
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(value);
        self.n_kv += 1;
    }

    pub fn kv_u32(&mut self, key: &str, v: u32) {
        self.kv_raw(key, 4, &v.to_le_bytes());
    }

    pub fn kv_f32(&mut self, key: &str, v: f32) {
        self.kv_raw(key, 6, &v.to_le_bytes());
    }

    pub fn kv_bool(&mut self, key: &str, v: bool) {
        self.kv_raw(key, 7, &[u8::from(v)]);
    }

    pub fn kv_str(&mut self, key: &str, v: &str) {
        let mut value = Vec::new();
        push_str(&mut value, v);
        self.kv_raw(key, 8, &value);
    }

    pub fn kv_str_array(&mut self, key: &str, items: &[&str]) {
        let mut value = Vec::new();
        value.extend(8u32.to_le_bytes());
        value.extend((items.len() as u64).to_le_bytes());
        for s in items {
            push_str(&mut value, s);
        }
        self.kv_raw(key, 9, &value);
    }

    pub fn kv_i32_array(&mut self, key: &str, items: &[i32]) {
        let mut value = Vec::new();
        value.extend(5u32.to_le_bytes());
        value.extend((items.len() as u64).to_le_bytes());
        for v in items {
            value.extend(v.to_le_bytes());
        }
        self.kv_raw(key, 9, &value);
    }

    /// A tensor of ggml type `type_id` with raw `data`; `dims` innermost first.
    pub fn tensor_raw(&mut self, name: &str, dims: &[u64], type_id: u32, data: &[u8]) {
        self.tensors
            .push((name.to_owned(), dims.to_vec(), type_id, data.to_vec()));
    }

    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], data: &[f32]) {
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor_raw(name, dims, 0, &bytes);
    }

    /// The file: header, metadata, tensor infos, then aligned tensor data.
    pub fn build(&self) -> Vec<u8> {
        let align = |n: u64| n.div_ceil(self.alignment) * self.alignment;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            push_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = align(offset + data.len() as u64);
        }
        if self.tensors.is_empty() {
            return out;
        }
        let data_start = align(out.len() as u64);
        out.resize(data_start as usize, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend(data);
        }
        out
    }
}
