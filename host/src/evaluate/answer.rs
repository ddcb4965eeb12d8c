//! What `digits predict` and `digits device predict` say about one picture: a line for people,
//! an object of the `--json` array for scripts. Both commands judge a picture the same way
//! ([`Seen`]) and answer in the same words.

use digits_core::verdict::Verdict;
use serde::Serialize;

use crate::evaluate::predict::Seen;

/// One digit and its probability.
#[derive(Clone, Copy, Serialize)]
pub struct Guess {
    pub digit: u8,
    pub probability: f32,
}

/// Whether a picture holds a digit, for the JSON output.
#[derive(Serialize)]
pub struct VerdictOut {
    /// False when the picture is not a digit.
    pub is_digit: bool,
    /// Why not, for scripts (`"blank"`, `"flat"`, `"unsure"`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Why not, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl From<Verdict> for VerdictOut {
    fn from(v: Verdict) -> Self {
        VerdictOut {
            is_digit: v == Verdict::Digit,
            reason: v.reason().map(|r| r.code()),
            explanation: v.reason().map(|r| r.to_string()),
        }
    }
}

/// What became of one picture: an object of the JSON output, and the source of the text.
#[derive(Serialize)]
pub struct Answer {
    file: String,
    /// The digit, when the picture is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    digit: Option<u8>,
    /// A digit, or not a digit and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<VerdictOut>,
    /// The three most probable digits, most probable first.
    #[serde(skip_serializing_if = "Option::is_none")]
    top3: Option<[Guess; 3]>,
    /// Probability of each digit 0-9.
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<[f32; 10]>,
    /// Where the 28x28 picture was saved (`digits predict --show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shown: Option<String>,
    /// Why the picture could not be judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Answer {
    /// The answer for `file`, as `seen`; `shown` is where its 28x28 picture was saved.
    pub fn seen(file: String, seen: &Seen, shown: Option<String>) -> Self {
        let top3 = seen.probabilities.as_ref().map(top3);
        Answer {
            file,
            digit: match (seen.verdict, &top3) {
                (Verdict::Digit, Some(t)) => Some(t[0].digit),
                _ => None,
            },
            verdict: Some(seen.verdict.into()),
            top3,
            probabilities: seen.probabilities,
            shown,
            error: None,
        }
    }

    /// The answer for `file` that could not be judged, and why.
    pub fn failed(file: String, error: String) -> Self {
        Answer {
            file,
            digit: None,
            verdict: None,
            top3: None,
            probabilities: None,
            shown: None,
            error: Some(error),
        }
    }

    /// Why the picture could not be judged, if it could not.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The line for people: `7.png: 7  (top-3: ...)`, or `bar.png: not a digit: ...`; `place`
    /// goes before the top-3 (`"on the device; "`).
    pub fn line(&self, place: &str) -> String {
        let verdict = match self.verdict.as_ref().and_then(|v| v.explanation.as_deref()) {
            Some(why) => format!("not a digit: {why}"),
            None => self.digit.map(|d| d.to_string()).unwrap_or_default(),
        };
        match &self.top3 {
            Some(t) => format!("{}: {verdict}  ({place}top-3: {})", self.file, top3_text(t)),
            None => format!("{}: {verdict}", self.file),
        }
    }
}

/// The three most probable digits, most probable first (the lower digit first on ties).
pub fn top3(p: &[f32; 10]) -> [Guess; 3] {
    let mut order: Vec<u8> = (0..10).collect();
    order.sort_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
    order[..3]
        .iter()
        .map(|&d| Guess {
            digit: d,
            probability: p[d as usize],
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| unreachable!("ten digits give three"))
}

/// The three guesses as the text output shows them: `7 99.1%, 2 0.5%, 3 0.2%`.
pub fn top3_text(t: &[Guess; 3]) -> String {
    let [a, b, c] = t.map(|g| format!("{} {:.1}%", g.digit, 100.0 * g.probability));
    format!("{a}, {b}, {c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top3_is_sorted_and_names_digits() {
        let mut p = [0.01f32; 10];
        p[7] = 0.6;
        p[1] = 0.2;
        p[3] = 0.12;
        let t = top3(&p);
        assert_eq!([t[0].digit, t[1].digit, t[2].digit], [7, 1, 3]);
        assert_eq!(t[0].probability, 0.6);
    }
}
