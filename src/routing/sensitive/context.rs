//! The words around a number: a card number follows `card` or `visa`, an order number follows
//! `order`. The nearest cue word decides; words that are no cue (`my`, `number`, `is`) are
//! passed over.

/// What the words near a number say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cue {
    /// A payment card (`card`, `visa`, `exp`, `cvv`…).
    Card,
    /// A phone (`call`, `phone`, `mobile`, `tel`…).
    Phone,
    /// A US Social Security number (`ssn`, `social`).
    Ssn,
    /// A Dutch BSN (`bsn`, `burgerservicenummer`, `sofinummer`).
    Bsn,
    /// An identifier that is none of them: an order, tracking, invoice, reference, account
    /// or ticket number (also a `#` right before the number).
    Id,
    /// No cue word nearby.
    None,
}

/// How many words back (or forward) a cue may be.
const MAX_WORDS: usize = 6;
/// How many bytes back (or forward) a cue may be.
const MAX_BYTES: usize = 64;
/// Longest word compared with the cue lists.
const MAX_WORD: usize = 24;

/// The nearest cue before byte `start` of `b`. A `#` right before the number marks an
/// identifier (`order #…`, `ticket #…`), unless the word before it is a card or phone cue
/// (`card # 4111…`).
pub(super) fn before(b: &[u8], start: usize) -> Cue {
    let floor = start.saturating_sub(MAX_BYTES);
    let mut p = start;
    let mut words = 0;
    let mut hash = false;
    while p > floor && words < MAX_WORDS {
        // Skip what separates words.
        while p > floor && !is_word(b[p - 1]) {
            hash |= words == 0 && b[p - 1] == b'#';
            p -= 1;
        }
        let end = p;
        while p > floor && is_word(b[p - 1]) {
            p -= 1;
        }
        if end == p {
            break;
        }
        // A word cut by the window's floor is not compared.
        if p == floor && p > 0 && is_word(b[p - 1]) {
            break;
        }
        let cue = classify(&b[p..end]);
        if hash && words == 0 {
            return if matches!(cue, Cue::Card | Cue::Phone) {
                cue
            } else {
                Cue::Id
            };
        }
        if cue != Cue::None {
            return cue;
        }
        words += 1;
    }
    if hash { Cue::Id } else { Cue::None }
}

/// The nearest cue after byte `end` of `b`.
pub(super) fn after(b: &[u8], end: usize) -> Cue {
    let ceiling = b.len().min(end.saturating_add(MAX_BYTES));
    let mut p = end;
    let mut words = 0;
    while p < ceiling && words < MAX_WORDS {
        while p < ceiling && !is_word(b[p]) {
            p += 1;
        }
        let start = p;
        while p < ceiling && is_word(b[p]) {
            p += 1;
        }
        if start == p || (p == ceiling && p < b.len() && is_word(b[p])) {
            break;
        }
        let cue = classify(&b[start..p]);
        if cue != Cue::None {
            return cue;
        }
        words += 1;
    }
    Cue::None
}

/// What the word right after a number (on the same line, past at most a few bytes of
/// ` -(/,:`) says about a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// A phone's label: `555 1234 office`, `699 956 915-Fax`, `(home)`.
    PhoneLabel,
    /// A unit or a currency: `1 299 000 EUR`, `2 500 000 points`: a quantity.
    Unit,
    /// Anything else, or nothing.
    Other,
}

/// The word right after byte `end` of `b`: see [`Next`].
pub(super) fn next_word(b: &[u8], end: usize) -> Next {
    let mut p = end;
    let ceiling = b.len().min(end.saturating_add(3));
    while p < ceiling && matches!(b[p], b' ' | b'-' | b'(' | b'/' | b',' | b':') {
        p += 1;
    }
    let start = p;
    let ceiling = b.len().min(start.saturating_add(MAX_WORD + 1));
    while p < ceiling && is_word(b[p]) {
        p += 1;
    }
    if p == start || p - start > MAX_WORD {
        return Next::Other;
    }
    let mut buf = [0u8; MAX_WORD];
    let lower = &mut buf[..p - start];
    lower.copy_from_slice(&b[start..p]);
    lower.make_ascii_lowercase();
    match &*lower {
        b"office" | b"fax" | b"mobile" | b"mob" | b"cell" | b"cellphone" | b"home" | b"desk"
        | b"tel" | b"phone" | b"landline" | b"whatsapp" | b"voicemail" => Next::PhoneLabel,
        b"eur" | b"euro" | b"euros" | b"usd" | b"dollars" | b"gbp" | b"pounds" | b"chf"
        | b"sek" | b"nok" | b"dkk" | b"pln" | b"jpy" | b"yen" | b"inr" | b"rupees" | b"won"
        | b"krw" | b"cad" | b"aud" | b"points" | b"pts" | b"miles" | b"km" | b"kg" | b"items"
        | b"units" | b"pcs" | b"times" | b"people" | b"users" | b"rows" | b"bytes" | b"kb"
        | b"mb" | b"gb" | b"views" | b"visitors" | b"customers" => Next::Unit,
        _ => Next::Other,
    }
}

/// Whether a currency sign comes right before byte `start` (a space between allowed):
/// `$1 299 000`, `€ 12 345 678`.
pub(super) fn currency_before(b: &[u8], start: usize) -> bool {
    let mut p = start;
    if p > 0 && b[p - 1] == b' ' {
        p -= 1;
    }
    let head = &b[..p];
    head.ends_with(b"$")
        || head.ends_with("€".as_bytes())
        || head.ends_with("£".as_bytes())
        || head.ends_with("¥".as_bytes())
        || head.ends_with("₹".as_bytes())
}

/// Letters, digits, and the bytes of non-ASCII characters (`téléphone` is one word).
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80
}

/// The cue a word gives, compared in ASCII lower case.
fn classify(word: &[u8]) -> Cue {
    if word.len() > MAX_WORD || word.len() < 2 {
        return Cue::None;
    }
    let mut buf = [0u8; MAX_WORD];
    let lower = &mut buf[..word.len()];
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    match &*lower {
        b"card" | b"cards" | b"credit" | b"creditcard" | b"debit" | b"debitcard" | b"visa"
        | b"mastercard" | b"amex" | b"discover" | b"jcb" | b"diners" | b"unionpay" | b"maestro"
        | b"cc" | b"ccn" | b"pan" | b"exp" | b"expiry" | b"expires" | b"expiration" | b"cvv"
        | b"cvc" | b"cvv2" | b"kaart" | b"creditkaart" | b"karte" | b"kreditkarte" | b"carte"
        | b"tarjeta" | b"cart\xc3\xa3o" | b"carta" | b"charge" | b"charged" | b"pay" | b"paid"
        | b"billed" | b"payment" | b"betaald" | b"bezahlt" | b"pagado" | b"pay\xc3\xa9" => {
            Cue::Card
        }
        b"phone"
        | b"phones"
        | b"telephone"
        | b"tel"
        | b"call"
        | b"calling"
        | b"mobile"
        | b"cell"
        | b"cellphone"
        | b"whatsapp"
        | b"sms"
        | b"text"
        | b"txt"
        | b"fax"
        | b"ph"
        | b"mob"
        | b"tlf"
        | b"telefon"
        | b"telefoon"
        | b"telefono"
        | b"tel\xc3\xa9fono"
        | b"t\xc3\xa9l\xc3\xa9phone"
        | b"handy"
        | b"portable"
        | b"rufnummer"
        | b"mobiel"
        | b"dial"
        | b"landline"
        | b"reach"
        | b"reachable"
        | b"contact"
        | b"ring"
        | b"calls"
        | b"called"
        | b"phoned"
        | b"answering"
        | b"voicemail"
        | b"hotline"
        | b"helpline"
        | b"message"
        | b"messages"
        | b"msg"
        | b"texts"
        | b"texted"
        | b"texting" => Cue::Phone,
        b"ssn" | b"social" | b"itin" | b"taxpayer" => Cue::Ssn,
        b"bsn" | b"burgerservicenummer" | b"sofinummer" | b"sofi" => Cue::Bsn,
        b"order" | b"orders" | b"ordernumber" | b"tracking" | b"track" | b"invoice" | b"inv"
        | b"ref" | b"reference" | b"confirmation" | b"conf" | b"transaction" | b"txn"
        | b"ticket" | b"case" | b"shipment" | b"parcel" | b"package" | b"awb" | b"po" | b"sku"
        | b"serial" | b"sn" | b"imei" | b"model" | b"part" | b"account" | b"acct" | b"customer"
        | b"member" | b"membership" | b"policy" | b"claim" | b"booking" | b"reservation"
        | b"pnr" | b"receipt" | b"id" | b"rma" | b"item" | b"product" | b"isbn" | b"upc"
        | b"ean" | b"asin" | b"bestelling" | b"bestellung" | b"bestellnummer" | b"commande"
        | b"pedido" | b"ordine" | b"sendungsnummer" | b"rechnung" | b"factuur" | b"facture"
        | b"shipping" | b"delivery" | b"waybill" | b"voucher" | b"coupon" | b"code"
        | b"version" | b"build" | b"flight" | b"ordered" | b"zip" | b"zipcode" | b"postcode"
        | b"postal" | b"plz" => Cue::Id,
        _ => Cue::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue_before(text: &str) -> Cue {
        before(text.as_bytes(), text.len())
    }

    #[test]
    fn the_nearest_cue_word_decides() {
        assert_eq!(cue_before("my card number is "), Cue::Card);
        assert_eq!(cue_before("paid by card for order "), Cue::Id);
        assert_eq!(cue_before("order 12345, card "), Cue::Card);
        assert_eq!(cue_before("Order #"), Cue::Id);
        assert_eq!(cue_before("please call me on "), Cue::Phone);
        assert_eq!(cue_before("Téléphone : "), Cue::Phone);
        assert_eq!(cue_before("hello there "), Cue::None);
        assert_eq!(cue_before(""), Cue::None);
        let far = format!("card {} ", "word ".repeat(20));
        assert_eq!(cue_before(&far), Cue::None);
        assert_eq!(after(b"1234 exp 12/27", 4), Cue::Card);
        assert_eq!(after(b"1234 is my order", 4), Cue::Id);
    }
}
