//! The crate's layering, enforced (issue 20, point 1): reads `src/`, resolves every import to the
//! file that defines the name, and fails on an import that runs up the layer order or on files
//! that import each other in a circle. Plain std, no crate API: a small Rust reader, not a
//! compiler — it reads `mod`, `use` and paths, which is all the layering is made of.
//!
//! Run: `cargo test --test layers -- --nocapture`; `LAYERS_ROOT=<checkout>`
//! reads another tree (an older commit, say).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers, bottom (L0) up: a file may import from its own layer or lower. A file's layer is that
/// of its top-level module (first segment under `src/`; `error` for `src/error.rs`). A module
/// missing here fails the test, so a new one has to be placed.
const LAYERS: &[&[&str]] = &[
    // L0, the vocabulary. `error` is `src/error.rs` today, on its way into `types/`: kept so the
    // table holds before and after. `simulator` is test support that may import L0–L1 at most;
    // today it imports nothing of the crate, so it sits on L0, the lowest layer that holds (raise
    // it to L1 if it comes to need `http`).
    &["types", "secret", "time", "telemetry", "error", "simulator"],
    &["http", "store"], // L1
    &["provider"],      // L2
    &["providers"],     // L3
    &["catalog"],       // L4
    &["accounting"],    // L5
    &["spend"],         // L6
    &["relay"],         // L7
    &["routing"],       // L8
    &["config"],        // L9
    &["gateway"],       // L10
];

/// Above every layer: these may import anything.
const TOP: &[&str] = &["fuzzing", "bin", "lib.rs"];

/// Source files by path (`src/...`), read from disk or written in a unit test.
type Files = BTreeMap<String, String>;
/// A module's path from the crate root (`["relay", "health"]`).
type ModPath = Vec<String>;
/// File-level imports: (from, to) → the names that tie them.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;
type Toks = [(Tok, usize)];

// ---------------------------------------------------------------------------------------------
// Reading: comments and literals blanked, then tokens.

/// The source with comments (doc comments and their links included) and string/char literals
/// turned into spaces, byte for byte, so that offsets still point into the original text.
fn blank(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut wipe = |from: usize, to: usize| {
        let to = to.min(b.len());
        out[from..to]
            .iter_mut()
            .filter(|c| **c != b'\n')
            .for_each(|c| *c = b' ');
        to
    };
    let find = |from: usize, pat: &[u8]| b[from..].windows(pat.len()).position(|w| w == pat);
    let mut i = 0;
    while i < b.len() {
        i = if b[i..].starts_with(b"//") {
            wipe(i, find(i, b"\n").map_or(b.len(), |p| i + p))
        } else if b[i..].starts_with(b"/*") {
            let (mut j, mut depth) = (i + 2, 1); // block comments nest
            while j < b.len() && depth > 0 {
                depth +=
                    i32::from(b[j..].starts_with(b"/*")) - i32::from(b[j..].starts_with(b"*/"));
                j += if b[j..].starts_with(b"/*") || b[j..].starts_with(b"*/") {
                    2
                } else {
                    1
                };
            }
            wipe(i, j)
        } else if b[i] == b'\'' {
            // A char literal (`'a'`, `'\''`, `'{'`) is wiped; a lifetime (`'a`) is not.
            let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
            if b.get(i + 1) == Some(&b'\\') {
                wipe(i, find(i + 3, b"'").map_or(b.len(), |p| i + 4 + p))
            } else if b.get(i + 1 + len) == Some(&b'\'') {
                wipe(i, i + 2 + len)
            } else {
                i + 1
            }
        } else if b[i] == b'"' {
            // `r#"…"#` is raw: no escapes, ends at a quote followed by as many `#`.
            let hashes = b[..i].iter().rev().take_while(|&&c| c == b'#').count();
            let raw = i > hashes && b[i - hashes - 1] == b'r';
            let mut j = i + 1;
            while j < b.len() && !(b[j] == b'"' && b[j + 1..].starts_with(&b"#".repeat(hashes))) {
                j += if !raw && b[j] == b'\\' { 2 } else { 1 };
            }
            wipe(
                i - if raw { hashes } else { 0 },
                j + 1 + if raw { hashes } else { 0 },
            )
        } else {
            i + 1
        };
    }
    out
}

/// A token: an identifier or keyword, or one punctuation byte; `::` is lexed as [`SEP`].
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Id(String),
    P(u8),
}

/// `::` as one token (`~` is no longer Rust syntax).
const SEP: u8 = b'~';

/// Tokens with their byte offsets; `r#type` reads as `type`.
fn lex(code: &[u8]) -> Vec<(Tok, usize)> {
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let (mut toks, mut i) = (Vec::new(), 0);
    while i < code.len() {
        if code[i].is_ascii_whitespace() || !code[i].is_ascii() {
            i += 1;
        } else if ident(&code[i]) {
            let raw = code[i..].starts_with(b"r#") && code.get(i + 2).is_some_and(ident);
            let start = if raw { i + 2 } else { i };
            let end = start + code[start..].iter().take_while(|&c| ident(c)).count();
            toks.push((
                Tok::Id(String::from_utf8_lossy(&code[start..end]).into()),
                i,
            ));
            i = end;
        } else {
            let sep = code[i..].starts_with(b"::");
            toks.push((Tok::P(if sep { SEP } else { code[i] }), i));
            i += if sep { 2 } else { 1 };
        }
    }
    toks
}

fn id_at(toks: &Toks, k: usize) -> Option<&str> {
    match toks.get(k) {
        Some((Tok::Id(x), _)) => Some(x),
        _ => None,
    }
}

fn p_at(toks: &Toks, k: usize) -> Option<u8> {
    match toks.get(k) {
        Some((Tok::P(c), _)) => Some(*c),
        _ => None,
    }
}

/// The index of the token that ends what starts at `from`: the bracket closing the first one
/// opened, or a `;` before any bracket is open.
fn item_end(toks: &Toks, from: usize, stop_at_semicolon: bool) -> usize {
    let mut depth = 0i32;
    for (k, (t, _)) in toks.iter().enumerate().skip(from) {
        match t {
            Tok::P(b'(' | b'[' | b'{') => depth += 1,
            Tok::P(b')' | b']' | b'}') => {
                depth -= 1;
                if depth == 0 && (matches!(t, Tok::P(b'}')) || !stop_at_semicolon) {
                    return k;
                }
            }
            Tok::P(b';') if depth == 0 && stop_at_semicolon => return k,
            _ => {}
        }
    }
    toks.len().saturating_sub(1)
}

/// Marks the tokens of items under `#[cfg(test)]` (or `cfg(all(test, …))`): test modules inline
/// or in their own file, test helpers, test imports. They count in neither check.
fn test_mask(toks: &Toks) -> Vec<bool> {
    let mut mask = vec![false; toks.len()];
    let mut i = 0;
    while i < toks.len() {
        if !(p_at(toks, i) == Some(b'#') && p_at(toks, i + 1) == Some(b'[')) {
            i += 1;
            continue;
        }
        let close = item_end(toks, i + 1, false);
        let ids: Vec<&str> = (i + 2..close).filter_map(|k| id_at(toks, k)).collect();
        if ids == ["cfg", "test"] || ids.starts_with(&["cfg", "all", "test"]) {
            let end = item_end(toks, close + 1, true); // later attributes included
            mask[i..=end].iter_mut().for_each(|m| *m = true);
            i = end;
        }
        i += 1;
    }
    mask
}

// ---------------------------------------------------------------------------------------------
// One file: its modules, `mod` declarations, `use` items, paths and identifiers.

#[derive(Default, Debug)]
struct Module {
    file: String,
    children: BTreeMap<String, ModPath>,
    /// Items defined here (struct, enum, fn, const, …), by name.
    defs: BTreeSet<String>,
    /// Names bound by a module-level `use` (public or not: a child sees its parent's imports).
    aliases: BTreeMap<String, ModPath>,
    globs: Vec<ModPath>,
}

/// One name bound by a `use`: `name` is `*` for a glob, `_` for `as _`.
struct Use {
    ctx: ModPath,
    path: ModPath,
    name: String,
    public: bool,
}

#[derive(Default)]
struct Scan {
    /// `mod x;` declarations: (inline modules around it in the file, name, `#[path]`, test-only).
    decls: Vec<(Vec<String>, String, Option<String>, bool)>,
    uses: Vec<Use>,
    /// Paths in code (`crate::a::B`, `super::x::y`, `child::f`), with the module they stand in.
    paths: Vec<(ModPath, ModPath)>,
    /// Identifiers in code outside `use` items: what a glob or a re-export is used for.
    idents: BTreeSet<String>,
}

const ITEMS: &[&str] = &[
    "fn", "struct", "enum", "union", "trait", "type", "const", "static",
];

/// Reads one file standing as `module`, filling `mods` with its modules (inline ones included).
fn scan(file: &str, src: &str, module: &[String], mods: &mut BTreeMap<ModPath, Module>) -> Scan {
    let toks = lex(&blank(src));
    let test = test_mask(&toks);
    let mut s = Scan::default();
    fn at<'a>(mods: &'a mut BTreeMap<ModPath, Module>, p: &[String], file: &str) -> &'a mut Module {
        let m = mods.entry(p.to_vec()).or_default();
        m.file = file.into();
        m
    }
    at(mods, module, file);
    // Inline modules (`mod opt { … }`): their path and the depth of their body. Bodies of macro
    // calls at item level (`lenient_enum! { pub enum Role … }`) define items too.
    let mut frames: Vec<(ModPath, usize)> = vec![(module.to_vec(), 0)];
    let mut macro_bodies: Vec<usize> = Vec::new();
    let (mut depth, mut i, mut path_attr, mut public) = (0usize, 0, None::<String>, false);
    while i < toks.len() {
        let (ctx, body) = frames.last().cloned().unwrap_or_default();
        let item_level = depth == body || macro_bodies.last() == Some(&depth);
        let next = id_at(&toks, i + 1).map(String::from);
        match &toks[i].0 {
            Tok::P(b'#') if p_at(&toks, i + 1) == Some(b'[') => {
                let close = item_end(&toks, i + 1, false);
                if id_at(&toks, i + 2) == Some("path") && p_at(&toks, i + 3) == Some(b'=') {
                    let text = &src[toks[i + 3].1 + 1..toks[close].1];
                    path_attr = Some(text.trim().trim_matches('"').to_string());
                }
                i = close;
            }
            Tok::P(b'(' | b'[' | b'{') => depth += 1,
            Tok::P(b')' | b']' | b'}') => {
                depth = depth.saturating_sub(1);
                if depth < body {
                    frames.pop();
                }
                if macro_bodies.last().is_some_and(|&d| depth < d) {
                    macro_bodies.pop();
                }
            }
            Tok::Id(kw) if kw == "mod" && item_level && next.is_some() => {
                let name = next.unwrap_or_default();
                let child = [ctx.clone(), vec![name.clone()]].concat();
                let inline = ctx[module.len()..].to_vec();
                if p_at(&toks, i + 2) == Some(b';') {
                    s.decls
                        .push((inline, name.clone(), path_attr.take(), test[i]));
                } else if !test[i] {
                    frames.push((child.clone(), depth + 1));
                    at(mods, &child, file);
                }
                if !test[i] {
                    at(mods, &ctx, file).children.insert(name, child);
                }
                i += 1;
            }
            _ if test[i] => {}
            Tok::Id(kw) if kw == "pub" => public = true,
            Tok::Id(kw) if kw == "use" => {
                let mut bound = Vec::new();
                i = use_tree(&toks, i + 1, Vec::new(), &mut bound);
                for (path, name) in bound {
                    if item_level && name == "*" {
                        at(mods, &ctx, file).globs.push(path.clone());
                    } else if item_level {
                        at(mods, &ctx, file)
                            .aliases
                            .insert(name.clone(), path.clone());
                    }
                    s.uses.push(Use {
                        ctx: ctx.clone(),
                        path,
                        name,
                        public,
                    });
                }
                public = false;
                continue;
            }
            Tok::Id(kw) if item_level && p_at(&toks, i + 1) == Some(b'!') => {
                if kw == "macro_rules" {
                    at(mods, &ctx, file)
                        .defs
                        .extend(id_at(&toks, i + 2).map(String::from));
                } else {
                    macro_bodies.push(depth + 1);
                }
            }
            Tok::Id(kw) if item_level && ITEMS.contains(&kw.as_str()) => {
                let name = if next.as_deref() == Some("mut") {
                    id_at(&toks, i + 2)
                } else {
                    next.as_deref()
                };
                if let Some(name) = name.filter(|n| !ITEMS.contains(n) && *n != "_") {
                    at(mods, &ctx, file).defs.insert(name.into());
                }
            }
            Tok::Id(x) => {
                s.idents.insert(x.clone());
                // The start of a path `a::b::c` (`::<` of a turbofish ends it).
                if p_at(&toks, i.wrapping_sub(1)) != Some(SEP) && p_at(&toks, i + 1) == Some(SEP) {
                    let mut segs = vec![x.clone()];
                    let mut k = i + 1;
                    while let (Some(SEP), Some(seg)) = (p_at(&toks, k), id_at(&toks, k + 1)) {
                        segs.push(seg.into());
                        k += 2;
                    }
                    s.paths.push((ctx.clone(), segs));
                }
            }
            _ => {}
        }
        if matches!(toks[i].0, Tok::P(b';' | b'{' | b'}')) {
            (path_attr, public) = (None, false);
        }
        i += 1;
    }
    s
}

/// Reads a use tree from `i` (`a::{b::{C, D}, e as f, self, *}`), pushing (path, bound name);
/// returns the index after it (after the `;` at the top).
fn use_tree(
    toks: &Toks,
    mut i: usize,
    mut path: ModPath,
    out: &mut Vec<(ModPath, String)>,
) -> usize {
    let top = path.is_empty();
    let end = |i: usize| {
        if top && p_at(toks, i) == Some(b';') {
            i + 1
        } else {
            i
        }
    };
    loop {
        match &toks.get(i).map(|t| &t.0) {
            Some(Tok::P(SEP)) if path.is_empty() => path.push("::".into()), // `::dep`: external
            Some(Tok::P(SEP)) => {}
            Some(Tok::Id(seg)) if p_at(toks, i + 1) == Some(SEP) => path.push(seg.clone()),
            Some(Tok::Id(seg)) => {
                let mut name = seg.clone();
                if seg != "self" {
                    path.push(seg.clone());
                }
                if id_at(toks, i + 1) == Some("as") {
                    name = id_at(toks, i + 2).unwrap_or_default().into();
                    i += 2;
                } else if seg == "self" {
                    name = path.last().cloned().unwrap_or_default();
                }
                out.push((path, name));
                return end(i + 1);
            }
            Some(Tok::P(b'*')) => {
                out.push((path, "*".into()));
                return end(i + 1);
            }
            Some(Tok::P(b'{')) => {
                i += 1;
                while toks.get(i).is_some_and(|t| t.0 != Tok::P(b'}')) {
                    i = use_tree(toks, i, path.clone(), out);
                    i += usize::from(p_at(toks, i) == Some(b','));
                }
                return end(i + 1);
            }
            _ => return end(i + 1),
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The crate: modules from `lib.rs` down, names resolved to the file that defines them.

enum Res {
    Module(ModPath),
    /// An item: the file that defines it, and its name.
    Item(String, String),
}

type Seen = BTreeSet<(ModPath, String)>;

#[derive(Default)]
struct Crate {
    mods: BTreeMap<ModPath, Module>,
    /// Analysed files with what they read.
    scans: BTreeMap<String, Scan>,
    /// Files declared only under `#[cfg(test)]`.
    test_files: BTreeSet<String>,
}

impl Crate {
    /// Walks `mod` declarations from `src/lib.rs`, as the compiler does. `src/bin/` is another
    /// crate (it imports `polyrelay::…`) and sits on top: it is not read.
    fn load(files: &Files) -> Crate {
        let mut krate = Crate::default();
        let mut queue = vec![("src/lib.rs".to_string(), ModPath::new())];
        while let Some((file, module)) = queue.pop() {
            let Some(src) = files
                .get(&file)
                .filter(|_| !krate.scans.contains_key(&file))
            else {
                continue;
            };
            let s = scan(&file, src, &module, &mut krate.mods);
            // A child's file: `#[path]` beside this file, else `<dir>/name.rs` or `<dir>/name/mod.rs`.
            let base = file.rsplit_once('/').map_or("", |(d, _)| d);
            let mod_rs = file.ends_with("/lib.rs") || file.ends_with("/mod.rs");
            let dir = if mod_rs {
                base
            } else {
                file.trim_end_matches(".rs")
            };
            for (inline, name, path_attr, test) in &s.decls {
                let sub = [vec![dir.to_string()], inline.clone()].concat().join("/");
                let candidates = match path_attr {
                    Some(p) => vec![format!("{base}/{p}")],
                    None => vec![format!("{sub}/{name}.rs"), format!("{sub}/{name}/mod.rs")],
                };
                let Some(target) = candidates.into_iter().find(|c| files.contains_key(c)) else {
                    continue;
                };
                if *test {
                    krate.test_files.insert(target);
                } else {
                    queue.push((
                        target,
                        [module.clone(), inline.clone(), vec![name.clone()]].concat(),
                    ));
                }
            }
            krate.scans.insert(file, s);
        }
        krate
    }

    /// What `name` means inside module `m`: a child module, an item, or what a `use` or a glob
    /// binds it to — re-exports followed to the defining file.
    fn lookup(&self, m: &[String], name: &str, seen: &mut Seen) -> Option<Res> {
        if !seen.insert((m.to_vec(), name.to_string())) {
            return None; // a loop of re-exports
        }
        let module = self.mods.get(m)?;
        if let Some(c) = module.children.get(name) {
            return Some(Res::Module(c.clone()));
        }
        if module.defs.contains(name) {
            return Some(Res::Item(module.file.clone(), name.into()));
        }
        if let Some(p) = module.aliases.get(name) {
            return self.resolve(m, p, seen).ok().flatten();
        }
        module
            .globs
            .iter()
            .find_map(|g| match self.resolve(m, g, seen) {
                Ok(Some(Res::Module(gm))) => self.lookup(&gm, name, seen),
                _ => None,
            })
    }

    /// Resolves a path standing in module `ctx`. `Ok(None)`: not of this crate (std, a
    /// dependency, a local name). `Err(module, name)`: of this crate, but the name is not found.
    fn resolve(
        &self,
        ctx: &[String],
        path: &[String],
        seen: &mut Seen,
    ) -> Result<Option<Res>, (ModPath, String)> {
        let parent = |m: &[String]| m[..m.len().saturating_sub(1)].to_vec();
        let Some((head, rest)) = path.split_first() else {
            return Ok(None);
        };
        let mut cur = match head.as_str() {
            "crate" => Res::Module(Vec::new()),
            "super" => Res::Module(parent(ctx)),
            "self" => Res::Module(ctx.to_vec()),
            _ => match self.lookup(ctx, head, seen) {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        for seg in rest {
            let Res::Module(m) = &cur else { break }; // a variant or an associated item
            cur = match seg.as_str() {
                "super" => Res::Module(parent(m)),
                "self" => Res::Module(m.clone()),
                _ => self.lookup(m, seg, seen).ok_or((m.clone(), seg.clone()))?,
            };
        }
        Ok(Some(cur))
    }

    /// The file-level import graph; also the names not found (reported, and counted as an
    /// import of their module's file so that nothing is lost).
    fn edges(&self) -> (Edges, BTreeSet<String>) {
        let (mut edges, mut missing) = (Edges::new(), BTreeSet::new());
        for (file, s) in &self.scans {
            let mut found = |r: Result<Option<Res>, (ModPath, String)>, keep: bool| {
                let (to, name) = match r {
                    Ok(Some(Res::Item(to, name))) if keep => (to, name),
                    Err((m, name)) => {
                        missing.insert(format!("{file}: {}::{name}", m.join("::")));
                        (
                            self.mods
                                .get(&m)
                                .map(|m| m.file.clone())
                                .unwrap_or_default(),
                            name,
                        )
                    }
                    _ => return,
                };
                if to != *file && !to.is_empty() {
                    edges.entry((file.clone(), to)).or_default().insert(name);
                }
            };
            // Names this file defines itself shadow what a glob brings.
            let own: BTreeSet<&String> = self
                .mods
                .values()
                .filter(|m| m.file == *file)
                .flat_map(|m| &m.defs)
                .collect();
            for u in &s.uses {
                let r = self.resolve(&u.ctx, &u.path, &mut Seen::new());
                if let (Ok(Some(Res::Module(g))), "*") = (&r, u.name.as_str()) {
                    for id in s.idents.iter().filter(|id| !own.contains(id)) {
                        found(Ok(self.lookup(g, id, &mut Seen::new())), true);
                    }
                    continue;
                }
                // A re-export alone is no import; a private `use` is (a trait brings methods).
                found(r, !u.public || u.name == "_" || s.idents.contains(&u.name));
            }
            for (ctx, path) in &s.paths {
                found(self.resolve(ctx, path, &mut Seen::new()), true);
            }
        }
        (edges, missing)
    }
}

// ---------------------------------------------------------------------------------------------
// The two checks.

/// A file's layer: (top-level module, level; `usize::MAX` for the top), if the table places it.
fn layer_of(file: &str, layers: &[&[&str]]) -> Option<(String, usize)> {
    let rest = file.strip_prefix("src/").unwrap_or(file);
    let top = match rest.split_once('/') {
        Some((dir, _)) => dir,
        None if rest == "lib.rs" => rest,
        None => rest.trim_end_matches(".rs"),
    };
    let level = layers.iter().position(|l| l.contains(&top));
    let level = level.or_else(|| TOP.contains(&top).then_some(usize::MAX))?;
    Some((top.to_string(), level))
}

fn level_name(l: usize) -> String {
    if l == usize::MAX {
        "top".into()
    } else {
        format!("L{l}")
    }
}

/// Strongly connected components of more than one file, by mutual reachability (a hundred
/// files: plain searches are simpler than Tarjan's bookkeeping and fast enough).
fn circles(edges: &Edges) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys().filter(|(a, b)| !uses_its_facade(a, b)) {
        next.entry(a).or_default().push(b);
    }
    let reach = |from| {
        let (mut seen, mut stack): (BTreeSet<&str>, Vec<&str>) = (BTreeSet::new(), vec![from]);
        while let Some(n) = stack.pop() {
            stack.extend(
                next.get(n)
                    .into_iter()
                    .flatten()
                    .filter(|m| seen.insert(**m)),
            );
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|n| (*n, reach(n))).collect();
    let mut out = BTreeSet::new();
    for (n, r) in reaches.iter().filter(|(n, r)| r.contains(*n)) {
        let back = |m: &&&str| reaches.get(**m).is_some_and(|rm| rm.contains(n));
        out.insert(
            r.iter()
                .filter(back)
                .map(|m| m.to_string())
                .collect::<Vec<_>>(),
        );
    }
    out.into_iter().collect()
}

/// Whether `to` is the `mod.rs` of a folder holding `from`: a part of a module using what its
/// folder's facade defines (`super::Inner`), the way Rust's module tree is meant to be read. Such
/// an arrow does not make a circle with the facade's own use of its parts (farm-studio counts it
/// the same way); circles between siblings, or across folders, still do.
fn uses_its_facade(from: &str, to: &str) -> bool {
    to.strip_suffix("mod.rs")
        .is_some_and(|dir| dir.ends_with('/') && from.starts_with(dir) && from != to)
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Every finding for a tree (empty when the layering holds), the graph, and the names not found.
fn check(files: &Files, layers: &[&[&str]]) -> (Vec<String>, Edges, BTreeSet<String>) {
    let krate = Crate::load(files);
    let (edges, missing) = krate.edges();
    let mut problems = Vec::new();
    for file in files.keys() {
        let (read, bin) = (krate.scans.contains_key(file), file.starts_with("src/bin/"));
        if (read || bin) && layer_of(file, layers).is_none() {
            problems.push(format!(
                "{file}: its top-level module has no layer in LAYERS; place it"
            ));
        }
        // A test module's folder (`budget/tests/mod.rs` and its `mod calendar;`) is tests too.
        let under_tests = krate.test_files.iter().any(|t| {
            t.strip_suffix("mod.rs")
                .is_some_and(|dir| dir.ends_with('/') && file.starts_with(dir))
        });
        if !read && !bin && !krate.test_files.contains(file) && !under_tests {
            problems.push(format!(
                "{file}: not reached from src/lib.rs by `mod` nor declared under #[cfg(test)]"
            ));
        }
    }
    for ((from, to), names) in &edges {
        let (Some((fm, fl)), Some((tm, tl))) = (layer_of(from, layers), layer_of(to, layers))
        else {
            continue;
        };
        if tl > fl {
            let (fl, tl) = (level_name(fl), level_name(tl));
            problems.push(format!(
                "runs back up: {from} -> {to}: {} ({fl} {fm} imports {tl} {tm})",
                join(names)
            ));
        }
    }
    for (n, files) in circles(&edges).iter().enumerate() {
        problems.push(format!(
            "circle {}: {} files: {}",
            n + 1,
            files.len(),
            files.join(", ")
        ));
        for ((a, b), names) in edges
            .iter()
            .filter(|((a, b), _)| files.contains(a) && files.contains(b))
        {
            problems.push(format!("    {a} -> {b}: {}", join(names)));
        }
    }
    (problems, edges, missing)
}

fn read_src(root: &Path, dir: &Path, files: &mut Files) {
    for path in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
    {
        if path.is_dir() {
            read_src(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let key = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(key, std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn src_keeps_its_layers_and_has_no_circles() {
    let root = std::env::var("LAYERS_ROOT").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let mut files = Files::new();
    read_src(Path::new(&root), &Path::new(&root).join("src"), &mut files);
    assert!(
        files.contains_key("src/lib.rs"),
        "no src/lib.rs under {root}"
    );
    let (problems, edges, missing) = check(&files, LAYERS);
    println!("{} files, {} file-level imports", files.len(), edges.len());
    for m in &missing {
        println!("note: name not found, counted as an import of its module's file: {m}");
    }
    assert!(
        problems.is_empty(),
        "the layering of src/ has drifted ({} findings):\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The checker itself, on small trees in memory.

fn tree(files: &[(&str, &str)]) -> Files {
    files
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

#[test]
fn the_checker_resolves_names_to_their_defining_files() {
    let files = tree(&[
        (
            "src/lib.rs",
            "pub mod a;\npub mod b;\npub mod m;\nmod types;\npub use types::*;\n",
        ),
        (
            "src/types.rs",
            "pub struct Error;\npub enum Kind { A }\nmac! { pub enum Role {} }\n",
        ),
        // A circle of two files; `a` reaches `Error` through lib.rs's glob re-export, `Role`
        // inside a macro call, `C` through nested braces and a rename.
        (
            "src/a.rs",
            "use crate::{Error, b::{B, inner::{C as Renamed}}};\npub struct A;\n\
            fn f() -> Error { let _ = \"crate::m::Thing\"; crate::types::Kind::A; crate::Role }\n",
        ),
        (
            "src/b.rs",
            "pub mod inner { pub struct C; }\npub struct B(crate::a::A);\n",
        ),
        // mod.rs declares and re-exports: no edge by that; `super::Thing` goes to inner.rs.
        (
            "src/m/mod.rs",
            "mod inner;\nmod user;\npub use inner::Thing;\npub(crate) use user::{self as u};\n",
        ),
        (
            "src/m/inner.rs",
            "/// Links are no imports: [B](crate::b::B), `crate::a::A`.\n//! super::user::U\n\
            pub struct Thing;\n",
        ),
        (
            "src/m/user.rs",
            "use super::Thing;\n/* crate::a::A /* nested */ */\npub struct U(Thing, char);\n\
            const Q: char = '{';\nconst R: &str = r#\"\" crate::a::A\"#;\n\
            #[cfg(test)]\nmod tests { use crate::b::B; }\n#[cfg(test)]\n#[path = \"user_tests.rs\"]\nmod more;\n",
        ),
        ("src/m/user_tests.rs", "use crate::a::A;\n"),
    ]);
    let (problems, edges, missing) = check(&files, &[&["types", "m"], &["a", "b"]]);
    assert!(missing.is_empty(), "{missing:?}");
    let names = |from: &str, to: &str| join(&edges[&(from.to_string(), to.to_string())]);
    assert_eq!(names("src/a.rs", "src/types.rs"), "Error, Kind, Role");
    assert_eq!(names("src/a.rs", "src/b.rs"), "B, C");
    assert_eq!(names("src/b.rs", "src/a.rs"), "A");
    assert_eq!(names("src/m/user.rs", "src/m/inner.rs"), "Thing");
    // Nothing else: not from mod.rs (re-exports only), doc links, comments, strings or tests.
    assert_eq!(edges.len(), 4, "{edges:?}");
    assert_eq!(
        problems,
        [
            "circle 1: 2 files: src/a.rs, src/b.rs",
            "    src/a.rs -> src/b.rs: B, C",
            "    src/b.rs -> src/a.rs: A",
        ]
    );
}

#[test]
fn the_checker_reports_imports_that_run_up_and_unplaced_modules() {
    let files = tree(&[
        ("src/lib.rs", "pub mod types;\npub mod spend;\nmod extra;\n"),
        (
            "src/types/mod.rs",
            "mod response;\npub use response::Response;\n",
        ),
        (
            "src/types/response.rs",
            "pub struct Response(super::super::spend::Info);\n",
        ),
        (
            "src/spend/mod.rs",
            "use crate::types::Response;\npub struct Info;\nfn f(_: Response) {}\n",
        ),
        ("src/extra.rs", ""),
        ("src/orphan.rs", "use crate::spend::Info;\n"),
    ]);
    let (problems, _, _) = check(&files, &[&["types"], &[], &["spend"]]);
    assert_eq!(
        problems,
        [
            "src/extra.rs: its top-level module has no layer in LAYERS; place it",
            "src/orphan.rs: not reached from src/lib.rs by `mod` nor declared under #[cfg(test)]",
            "runs back up: src/types/response.rs -> src/spend/mod.rs: Info (L0 types imports L2 spend)",
            "circle 1: 2 files: src/spend/mod.rs, src/types/response.rs",
            "    src/spend/mod.rs -> src/types/response.rs: Response",
            "    src/types/response.rs -> src/spend/mod.rs: Info",
        ]
    );
}

#[test]
fn a_part_using_its_folders_facade_is_no_circle_but_siblings_are() {
    let files = tree(&[
        ("src/lib.rs", "pub mod m;\n"),
        (
            "src/m/mod.rs",
            "mod a;\nmod b;\npub struct Inner;\npub fn go() { a::run(); }\n",
        ),
        (
            "src/m/a.rs",
            "use super::Inner;\npub fn run() { let _ = Inner; super::b::f(); }\npub fn g() {}\n",
        ),
        ("src/m/b.rs", "pub fn f() { super::a::g(); }\n"),
    ]);
    let (problems, edges, _) = check(&files, &[&["m"]]);
    assert!(edges.contains_key(&("src/m/a.rs".into(), "src/m/mod.rs".into())));
    assert!(edges.contains_key(&("src/m/mod.rs".into(), "src/m/a.rs".into())));
    // a <-> b is a circle; a <-> mod.rs is a part and its facade.
    assert_eq!(
        problems[0], "circle 1: 2 files: src/m/a.rs, src/m/b.rs",
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
}
