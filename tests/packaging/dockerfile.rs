//! Invariants of the top-level Dockerfile (no Docker engine here, so it is checked, not built):
//! multi-stage, exact-version builder, distroless/chainguard static final stage, numeric non-root
//! USER, exec-form ENTRYPOINT, a static musl build, and no `latest` anywhere.

use crate::support::common;

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (keyword, args) = l.trim().split_once(char::is_whitespace).unwrap_or((&l, ""));
            (keyword.to_ascii_uppercase(), args.trim().to_string())
        })
        .collect()
}

/// `(name, tag, digest)` of an image reference.
fn split_image(image: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest.to_string())),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].split_once(':') {
        Some((name, tag)) => (
            format!("{}{name}", &rest[..last_slash]),
            Some(tag.to_string()),
            digest,
        ),
        None => (rest.to_string(), None, digest),
    }
}

/// An exact release: `MAJOR.MINOR.PATCH` optionally followed by a variant (`-slim-bookworm`).
fn exact_version(tag: &str) -> bool {
    let version = tag.split('-').next().unwrap_or_default();
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Everything wrong with a Dockerfile; empty when it meets the invariants.
fn problems(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if text.to_ascii_lowercase().contains("latest") {
        found.push("mentions `latest`".to_string());
    }
    let all = instructions(text);
    let stages: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    if stages.len() < 2 {
        found.push(format!(
            "{} stage(s); expected a builder and a final stage",
            stages.len()
        ));
        return found;
    }
    for &at in &stages {
        let image = all[at].1.split_whitespace().next().unwrap_or_default();
        let (_, tag, digest) = split_image(image);
        if tag.is_none() && digest.is_none() {
            found.push(format!("{image}: no tag or digest"));
        }
        if digest.as_deref().is_some_and(|d| !valid_digest(d)) {
            found.push(format!("{image}: malformed digest"));
        }
    }
    let builder = all[stages[0]]
        .1
        .split_whitespace()
        .next()
        .unwrap_or_default();
    if !split_image(builder).1.as_deref().is_some_and(exact_version) {
        found.push(format!(
            "builder {builder} is not pinned to an exact version"
        ));
    }
    let last = *stages.last().unwrap_or(&0);
    let final_image = all[last].1.split_whitespace().next().unwrap_or_default();
    let (final_name, _, _) = split_image(final_image);
    if !(final_name.starts_with("gcr.io/distroless/static")
        || final_name == "cgr.dev/chainguard/static")
    {
        found.push(format!(
            "final base {final_name} is not distroless/chainguard static"
        ));
    }
    let final_stage = &all[last + 1..];
    match final_stage.iter().rev().find(|(k, _)| k == "USER") {
        None => found.push("final stage has no USER".to_string()),
        Some((_, user)) => {
            let numeric = user
                .split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            let uid = user.split(':').next().and_then(|u| u.parse::<u32>().ok());
            if !numeric || uid.is_none_or(|u| u == 0) {
                found.push(format!("USER {user} is not a numeric non-root user"));
            }
        }
    }
    if final_stage.iter().any(|(k, _)| k == "RUN") {
        found.push("final stage runs a command (it must need no shell)".to_string());
    }
    match final_stage.iter().rev().find(|(k, _)| k == "ENTRYPOINT") {
        None => found.push("no ENTRYPOINT".to_string()),
        Some((_, args)) => match serde_json::from_str::<Vec<String>>(args) {
            Ok(argv) if !argv.is_empty() && argv[0].starts_with('/') => {
                let copied = final_stage
                    .iter()
                    .any(|(k, a)| k == "COPY" && a.ends_with(&argv[0]));
                if !copied {
                    found.push(format!(
                        "ENTRYPOINT {} is not what the stage copies",
                        argv[0]
                    ));
                }
            }
            _ => found.push(format!(
                "ENTRYPOINT {args} is not exec form with an absolute path"
            )),
        },
    }
    if !all[..last]
        .iter()
        .any(|(k, a)| k == "RUN" && a.contains("cargo build") && a.contains("--locked"))
        || !text.contains("x86_64-unknown-linux-musl")
    {
        found.push("builder does not build the locked static musl binary".to_string());
    }
    found
}

fn dockerfile() -> String {
    std::fs::read_to_string(common::repo_root().join("Dockerfile")).expect("read Dockerfile")
}

#[test]
fn dockerfile_meets_every_invariant() {
    let problems = problems(&dockerfile());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn each_broken_invariant_is_caught() {
    let good = dockerfile();
    let cases = [
        (
            "FROM docker.io/library/rust:1.95.0-slim-bookworm",
            "FROM docker.io/library/rust:1.95-slim-bookworm",
            "exact version",
        ),
        (
            "library/rust:1.95.0-slim-bookworm",
            "library/rust:latest",
            "latest",
        ),
        (
            "static-debian12:nonroot",
            "static-debian12:latest",
            "latest",
        ),
        (
            "gcr.io/distroless/static-debian12:nonroot",
            "debian:12.8",
            "distroless",
        ),
        ("USER 65532:65532", "USER nonroot", "numeric"),
        ("USER 65532:65532", "USER 0:0", "numeric"),
        (
            "ENTRYPOINT [\"/usr/local/bin/registry-operator\"]",
            "ENTRYPOINT /usr/local/bin/registry-operator",
            "exec form",
        ),
        ("--locked", "", "musl"),
    ];
    for (from, to, expected) in cases {
        assert!(
            good.contains(from),
            "fixture text {from:?} not in the Dockerfile"
        );
        let broken = good.replacen(from, to, 1);
        let found = problems(&broken);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{from:?} -> {to:?} not caught as {expected:?}: {found:?}"
        );
    }
    let single_stage: String = good
        .lines()
        .skip_while(|l| !l.starts_with("FROM gcr.io"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(problems(&single_stage).iter().any(|p| p.contains("stage")));
    let with_shell = good.replacen("USER 65532:65532", "RUN echo hi\nUSER 65532:65532", 1);
    assert!(problems(&with_shell).iter().any(|p| p.contains("no shell")));
}

#[test]
fn image_references_split_into_name_tag_and_digest() {
    let digest = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        split_image(&format!("localhost:5000/rust:1.95.0@{digest}")),
        (
            "localhost:5000/rust".to_string(),
            Some("1.95.0".to_string()),
            Some(digest.clone())
        )
    );
    assert_eq!(split_image("rust").1, None);
    assert!(exact_version("1.95.0-slim-bookworm"));
    assert!(!exact_version("1.95-slim"));
    assert!(!exact_version("slim"));
    assert!(valid_digest(&digest));
}

#[test]
fn dockerignore_sends_only_the_sources() {
    let text = std::fs::read_to_string(common::repo_root().join(".dockerignore"))
        .expect("read .dockerignore");
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "everything is excluded first");
    assert!(
        !rules
            .iter()
            .any(|r| r.contains("target") && r.starts_with('!'))
    );
    assert!(
        !rules
            .iter()
            .any(|r| r.contains(".venv") && r.starts_with('!'))
    );
}
