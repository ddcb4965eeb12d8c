//! Stroke width: grayscale dilation (heavier strokes) and erosion (thinner ones) over each
//! pixel's four neighbours, by a share in `[0, 1]`.

/// Image side.
const SIDE: usize = 28;

/// The pixel values of the four neighbours of `(x, y)` that are inside the image.
fn neighbours(image: &[u8; 784], x: usize, y: usize) -> impl Iterator<Item = u8> + '_ {
    [(-1i32, 0i32), (1, 0), (0, -1), (0, 1)]
        .into_iter()
        .filter_map(move |(dx, dy)| {
            let (nx, ny) = (x as i32 + dx, y as i32 + dy);
            ((0..SIDE as i32).contains(&nx) && (0..SIDE as i32).contains(&ny))
                .then(|| image[ny as usize * SIDE + nx as usize])
        })
}

/// Heavier strokes: each pixel becomes the larger of itself and `heaviness` times its
/// brightest neighbour; strokes grow by about a pixel on each side at `heaviness` 1.
pub fn thicken(image: &[u8; 784], heaviness: f64) -> [u8; 784] {
    let mut out = *image;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let brightest = neighbours(image, x, y).max().unwrap_or(0);
            let spread = (f64::from(brightest) * heaviness).round() as u8;
            out[y * SIDE + x] = image[y * SIDE + x].max(spread);
        }
    }
    out
}

/// Thinner strokes: each pixel moves `share` of the way down to its darkest neighbour (a
/// pixel outside the image counts as dark); strokes lose about a pixel on each side at
/// `share` 1.
pub fn thin(image: &[u8; 784], share: f64) -> [u8; 784] {
    let mut out = *image;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let inside = neighbours(image, x, y).count() == 4;
            let darkest = neighbours(image, x, y)
                .min()
                .filter(|_| inside)
                .unwrap_or(0);
            let v = image[y * SIDE + x];
            let cut = (f64::from(v.saturating_sub(darkest)) * share).round() as u8;
            out[y * SIDE + x] = v - cut;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot() -> [u8; 784] {
        let mut image = [0u8; 784];
        image[14 * 28 + 14] = 200;
        image
    }

    #[test]
    fn thickening_adds_ink_around_strokes_only() {
        let thick = thicken(&dot(), 1.0);
        assert_eq!(
            thick.iter().filter(|&&v| v > 0).count(),
            5,
            "the pixel and 4 neighbours"
        );
        assert_eq!(thick[14 * 28 + 15], 200);
        assert_eq!(thicken(&[0; 784], 1.0), [0; 784]);
    }

    #[test]
    fn thinning_removes_ink_at_the_edges_only() {
        let mut bar = [0u8; 784];
        for y in 10..13 {
            for x in 5..20 {
                bar[y * 28 + x] = 255;
            }
        }
        let thin_bar = thin(&bar, 1.0);
        // The middle row of a three-pixel bar survives, inside its ends.
        assert_eq!(thin_bar[11 * 28 + 10], 255);
        assert_eq!(thin_bar[10 * 28 + 10], 0);
        assert_eq!(thin_bar[11 * 28 + 5], 0);
        assert_eq!(thin(&bar, 0.0), bar);
        assert_eq!(thin(&dot(), 1.0), [0; 784]);
    }
}
