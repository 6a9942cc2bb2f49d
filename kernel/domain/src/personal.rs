//! The one definition of personal data, and how it is masked for keys without `pii:read`.
//!
//! Personal data is what identifies a person or reaches them:
//!
//! - the profile's **name** and **birthday**;
//! - the **values of identifiers** of the kinds phone, e-mail, union id and
//!   nick ([`is_personal_kind`]); external ids are the shop's own record keys
//!   (`external:erp`) and are not personal by themselves;
//! - **keys of customer data** that say they hold one of the above, an address or
//!   a person an order names ([`is_personal_attribute`]: `address`, `phone`,
//!   `mobile`, `email`, `id_card`, `real_name`, `receiver_name`, `consignee`,
//!   `contact`, `收货人`…), in custom attributes and in any payload;
//! - a bare **`name`** inside customer data (event payloads, attributes, message
//!   variables, merge records), unless the object holding it is a thing rather
//!   than a person (an order's `items`, a `segment`, a `tag`, a `coupon`…:
//!   [`NAMED_THINGS`]); in documents that are not customer data (audit details,
//!   journey definitions) `name` names the thing the document is about and stays;
//! - wherever these are copied: event payloads (identifiers, profiles), message
//!   recipients and the variables a journey filled from personal placeholders,
//!   merge records, audit details, and phone numbers or e-mail addresses written
//!   into free text (plugin logs, errors, payload strings: [`mask_free_text`]).
//!
//! Gender, province, city, tier, tags, scores and statistics are not personal by
//! this definition: they are what segments and dashboards are made of.
//!
//! Every type the API serialises that holds one of them implements [`Personal`];
//! the API masks through it and nowhere else.

use serde_json::{Map, Value};

use crate::identity::{self, IdentityKind};

/// The kinds of personal field, for documentation and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalField {
    Name,
    Birthday,
    Phone,
    Email,
    /// A union id or a nick.
    Identifier,
    /// A custom attribute named as personal (an address, an id card…).
    Attribute,
}

/// A column a segment export may hold, and the personal field it carries if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportColumn {
    pub name: &'static str,
    pub personal: Option<PersonalField>,
}

const fn column(name: &'static str, personal: Option<PersonalField>) -> ExportColumn {
    ExportColumn { name, personal }
}

/// Every column a segment export may hold: the export's list of columns and its notion of a
/// personal one both come from here (the API maps each name to a value). A personal column
/// needs the shop's export policy to allow personal columns and the key to hold `pii:read`.
pub const EXPORT_COLUMNS: [ExportColumn; 19] = [
    column("id", None),
    column("name", Some(PersonalField::Name)),
    column("phone", Some(PersonalField::Phone)),
    column("email", Some(PersonalField::Email)),
    column("birthday", Some(PersonalField::Birthday)),
    column("gender", None),
    column("province", None),
    column("city", None),
    column("tier", None),
    column("points", None),
    column("total_spent", None),
    column("order_count", None),
    column("aov", None),
    column("first_order_at", None),
    column("last_order_at", None),
    column("refund_count", None),
    column("refund_amount", None),
    column("tags", None),
    column("created_at", None),
];

/// The export column named `name`, if there is one.
pub fn export_column(name: &str) -> Option<&'static ExportColumn> {
    EXPORT_COLUMNS.iter().find(|c| c.name == name)
}

/// Keys of payloads and placeholder paths that carry personal data.
pub const PERSONAL_KEYS: [&str; 13] = [
    "name",
    "birthday",
    "phone",
    "email",
    "identities",
    "value",
    "nick",
    "unionid",
    "address",
    "profile",
    "recipient",
    "mobile",
    "attributes",
];

/// Parts of a key (compared in lower case) that say its value is personal, in custom
/// attributes and anywhere in customer data: how a person is reached, who they are, and the
/// people an order or a parcel names (Tmall's 收货人 with their phone and address).
const PERSONAL_KEY_PARTS: &[&str] = &[
    "address",
    "phone",
    "mobile",
    "email",
    "mail",
    "wechat",
    "unionid",
    "union_id",
    "openid",
    "open_id",
    "nick",
    "id_card",
    "idcard",
    "passport",
    "real_name",
    "realname",
    "full_name",
    "fullname",
    "first_name",
    "last_name",
    "given_name",
    "family_name",
    "surname",
    "birthday",
    "receiver",
    "consignee",
    "recipient",
    "contact",
    "buyer_name",
    "customer_name",
    "user_name",
    "member_name",
    "person_name",
    "holder_name",
    "收货人",
    "收件人",
    "姓名",
    "联系人",
    "手机",
    "电话",
    "地址",
    "邮箱",
    "身份证",
    "昵称",
];

/// Keys of customer data whose object is a thing with a name, not a person: a bare `name`
/// below one of them (an item's product name, a segment's name) is not personal.
pub const NAMED_THINGS: &[&str] = &[
    "item",
    "items",
    "sku",
    "skus",
    "product",
    "products",
    "goods",
    "category",
    "brand",
    "segment",
    "segments",
    "tag",
    "tags",
    "journey",
    "journeys",
    "template",
    "coupon",
    "coupons",
    "reward",
    "rewards",
    "tier",
    "tiers",
    "plugin",
    "campaign",
    "promotion",
    "promotions",
    "shop",
    "store",
    "channel",
    "model",
];

/// Whether identifiers of `kind` are personal data.
pub fn is_personal_kind(kind: &IdentityKind) -> bool {
    matches!(kind, IdentityKind::Phone | IdentityKind::Email | IdentityKind::UnionId | IdentityKind::Nick)
}

/// Whether a custom attribute's name (or a key of customer data) says it holds personal data:
/// `name`, or a key with a part of [`PERSONAL_KEY_PARTS`] (`receiver_mobile`, `Consignee`, `收货人`).
pub fn is_personal_attribute(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower == "name" || PERSONAL_KEY_PARTS.iter().any(|p| lower.contains(p)) || has_tel_word(key)
}

/// Whether a key holds `tel` as a word of its own (`tel`, `contact_tel`, `TelNo`, `tel2`), not as
/// letters inside another word (`hotel_name`, `telegram`, `satellite`).
fn has_tel_word(key: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    for c in key.chars() {
        let boundary = !c.is_ascii_alphanumeric()
            || previous.is_none_or(|p| !p.is_ascii_alphanumeric())
            || (c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase()))
            || (c.is_ascii_digit() != previous.is_some_and(|p| p.is_ascii_digit()));
        if boundary && c.is_ascii_alphanumeric() {
            words.push(String::new());
        }
        if let (true, Some(word)) = (c.is_ascii_alphanumeric(), words.last_mut()) {
            word.push(c.to_ascii_lowercase());
        }
        previous = Some(c);
    }
    words.iter().any(|w| matches!(w.as_str(), "tel" | "telno" | "telnum" | "telnumber"))
}

/// Whether a journey placeholder (`customer.name`, `trigger.value`) reads personal data: anything
/// of the customer but their id (the bare `customer` too), and any path of the trigger through a
/// personal key, a `customer` object or a key named as a personal attribute (`trigger.order.phone_no`).
///
/// A placeholder names a scalar: one resolving to an object or an array renders nothing (see
/// [`crate::journeys::render`]) and one naming a root or a known object (`{{trigger}}`,
/// `{{trigger.order}}`, `{{trigger.identities}}`) is refused when a journey is saved, so a
/// prefix of a personal path never copies the personal fields below it into a message.
pub fn is_personal_placeholder(path: &str) -> bool {
    let mut parts = path.split('.').map(str::trim);
    match parts.next() {
        Some("customer") => !matches!((parts.next(), parts.next()), (Some("id"), None)),
        Some("trigger") => parts.any(|p| PERSONAL_KEYS.contains(&p) || p == "customer" || is_personal_attribute(p)),
        _ => false,
    }
}

/// A personal text shown masked: its first character and `***`.
pub fn mask_text(value: &str) -> String {
    match value.chars().next() {
        None => String::new(),
        Some(first) => format!("{first}***"),
    }
}

/// An identifier's value as a key without `pii:read` sees it.
pub fn mask_identity(kind: &IdentityKind, value: &str) -> String {
    match kind {
        IdentityKind::Phone | IdentityKind::Email => identity::mask(kind, value),
        IdentityKind::UnionId | IdentityKind::Nick => mask_text(value),
        IdentityKind::External(_) => value.to_owned(),
    }
}

/// Mask phone numbers and e-mail addresses written anywhere in `text`.
///
/// **The rule for numbers.** A number is a run of digits (ASCII or full-width) joined by
/// single separators (a space, a hyphen, a dot) or parentheses, with an optional leading `+`
/// or `(`; it starts after a character that is not a letter, a digit, `_` or `+` (nor a `-`
/// or `.` right after a digit) and ends before one that is not a letter, a digit or `_`. A
/// number, or a part of it between spaces, is a phone when its digits are
///
/// - a Chinese mobile number (`1`, then `3`-`9`, then nine digits), alone or after a country
///   code `86` or `0086` (`8613800000001`, `(+86)13800000001`, `138-0000-0001`);
/// - or, after a `+`, 8 to 15 digits (E.164: `+44 20 7946 0958`);
///
/// and it is masked as an identifier is (the four digits before the last four). Any other
/// number is left whole: an order number of 20 digits holding 11 that would make a mobile
/// number, an amount (`13800.00`: one dot, before fewer than three digits, makes a decimal),
/// a date, a timestamp or a UUID is never half-masked. An 11-digit number that happens to
/// look like a mobile number is masked: the rule cannot tell it from one.
pub fn mask_free_text(text: &str) -> String {
    if !text.chars().any(|c| c == '@' || narrow(c) == '+' || narrow(c).is_ascii_digit()) {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let narrowed: Vec<char> = chars.iter().copied().map(narrow).collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = email_at(&chars, i) {
            let found: String = chars[i..end].iter().collect();
            out.push_str(&identity::mask(&IdentityKind::Email, &found));
            i = end;
            continue;
        }
        if let Some(number) = number_at(&narrowed, i) {
            let mut phones = number.phones().into_iter().peekable();
            for at in i..number.end {
                while phones.next_if(|(_, end)| *end <= at).is_some() {}
                match phones.peek() {
                    Some(&(start, end)) if start <= at && at < end => {
                        out.push(mask_digit(&chars[start..end], &narrowed[start..end], at - start))
                    }
                    _ => out.push(chars[at]),
                }
            }
            i = number.end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A character as the phone matcher reads it: full-width digits and signs as their ASCII forms.
fn narrow(c: char) -> char {
    match c {
        '０'..='９' => char::from_digit(c as u32 - '０' as u32, 10).unwrap_or(c),
        '＋' => '+',
        '－' => '-',
        '．' => '.',
        '（' => '(',
        '）' => ')',
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// A character that continues a word or a code, so a number touching it is part of that.
fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The character of a phone number's span at `at` as shown masked: the four digits before
/// the last four become `*`.
fn mask_digit(original: &[char], narrowed: &[char], at: usize) -> char {
    if !narrowed[at].is_ascii_digit() {
        return original[at];
    }
    let digits = narrowed.iter().filter(|c| c.is_ascii_digit()).count();
    let index = narrowed[..at].iter().filter(|c| c.is_ascii_digit()).count();
    if index + 8 >= digits && index + 4 < digits { '*' } else { original[at] }
}

/// A part of a number between spaces: its span, its digits, its dots and whether one of them
/// comes before fewer than three digits (one such dot makes a decimal; `+33.1.23.45.67.89` has many).
struct Part {
    start: usize,
    end: usize,
    digits: String,
    dots: usize,
    short_after_dot: bool,
}

impl Part {
    fn new(start: usize) -> Part {
        Part { start, end: start, digits: String::new(), dots: 0, short_after_dot: false }
    }

    fn decimal(&self) -> bool {
        self.dots == 1 && self.short_after_dot
    }
}

/// A number found in free text (see [`mask_free_text`]): its parts, whether it began with a `+`,
/// and whether its last part touches a word (and so cannot be a phone).
struct Number {
    parts: Vec<Part>,
    plus: bool,
    end: usize,
    last_touches_word: bool,
}

/// Parts of a phone number at most: `+86 138 0000 0001` has four.
const MOST_PARTS: usize = 6;

/// Common country codes whose national numbers have a fixed set of lengths (ITU-T E.164 and
/// the national plans), so a number written after a `+` ends where its country's numbers end
/// (`+44 20 7946 0958 9900` is a London number and another). Country codes are a prefix code:
/// at most one entry matches. A code not listed (Germany, Italy, Austria: their lengths vary)
/// takes the longest run of 8 to 15 digits.
const NATIONAL_LENGTHS: &[(&str, &[usize])] = &[
    ("1", &[10]),
    ("7", &[10]),
    ("27", &[9]),
    ("30", &[10]),
    ("31", &[9]),
    ("32", &[8, 9]),
    ("33", &[9]),
    ("34", &[9]),
    ("36", &[8, 9]),
    ("40", &[9]),
    ("41", &[9]),
    ("44", &[9, 10]),
    ("45", &[8]),
    ("47", &[8]),
    ("48", &[9]),
    ("52", &[10]),
    ("55", &[10, 11]),
    ("60", &[8, 9, 10]),
    ("61", &[9]),
    ("63", &[10]),
    ("64", &[8, 9, 10]),
    ("65", &[8]),
    ("66", &[8, 9]),
    ("81", &[9, 10]),
    ("82", &[8, 9, 10]),
    ("84", &[9, 10]),
    ("86", &[10, 11]),
    ("90", &[10]),
    ("91", &[10]),
    ("852", &[8]),
    ("853", &[8]),
    ("886", &[8, 9]),
    ("966", &[9]),
    ("971", &[8, 9]),
];

impl Number {
    /// The spans of the phones in the number, from the left, each the longest from where it starts.
    fn phones(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut a = 0;
        while a < self.parts.len() {
            let windows = a..self.parts.len().min(a + MOST_PARTS);
            // After a `+` the length depends on the country: the longest window of a length its
            // country code has ([`NATIONAL_LENGTHS`]), else the longest of E.164's length
            // (`+1 415 555 2671 2` is 11 digits). A table, not the numbering plan's parser: this
            // runs for every number in every text an API response masks, so it is kept cheap.
            let longest = match a == 0 && self.plus {
                true => windows.clone().rev().find(|&b| self.is_phone(a, b) && self.has_national_length(a, b)),
                false => None,
            }
            .or_else(|| windows.rev().find(|&b| self.is_phone(a, b)));
            match longest {
                Some(b) => {
                    out.push((self.parts[a].start, self.parts[b].end));
                    a = b + 1;
                }
                None => a += 1,
            }
        }
        out
    }

    /// Whether the digits of parts `a..=b`, after a `+`, are a country code of [`NATIONAL_LENGTHS`]
    /// followed by a national number of one of its lengths.
    fn has_national_length(&self, a: usize, b: usize) -> bool {
        let digits: usize = self.parts[a..=b].iter().map(|p| p.digits.len()).sum();
        let first = &self.parts[a].digits;
        NATIONAL_LENGTHS
            .iter()
            .find(|(code, _)| first.starts_with(code))
            .is_some_and(|(code, lengths)| lengths.contains(&(digits - code.len().min(digits))))
    }

    fn is_phone(&self, a: usize, b: usize) -> bool {
        let parts = &self.parts[a..=b];
        if parts.iter().any(Part::decimal) || (b + 1 == self.parts.len() && self.last_touches_word) {
            return false;
        }
        let digits: String = parts.iter().map(|p| p.digits.as_str()).collect();
        if a == 0 && self.plus {
            return (8..=15).contains(&digits.len());
        }
        let mobile = |d: &str| {
            let d = d.as_bytes();
            d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1])
        };
        mobile(&digits) || digits.strip_prefix("86").is_some_and(mobile) || digits.strip_prefix("0086").is_some_and(mobile)
    }
}

/// The number starting at `i` of the (narrowed) text, if one starts there.
fn number_at(n: &[char], i: usize) -> Option<Number> {
    let c = n[i];
    if !(c.is_ascii_digit() || c == '+' || c == '(') {
        return None;
    }
    if i > 0 {
        let before = n[i - 1];
        let inside_number = matches!(before, '-' | '.') && i > 1 && n[i - 2].is_ascii_digit();
        if word(before) || inside_number {
            return None;
        }
    }
    let mut j = i;
    if n[j] == '(' {
        j += 1;
    }
    let plus = n.get(j) == Some(&'+');
    if plus {
        j += 1;
    }
    if !n.get(j).is_some_and(char::is_ascii_digit) {
        return None;
    }
    let mut parts = Vec::new();
    let mut part = Part::new(i);
    loop {
        while j < n.len() && n[j].is_ascii_digit() {
            part.digits.push(n[j]);
            j += 1;
        }
        part.end = j;
        // The separators up to the next group: one space, hyphen or dot, with a parenthesis on either side.
        let mut k = j;
        while k < n.len() && k < j + 3 && matches!(n[k], ' ' | '-' | '.' | '(' | ')') {
            k += 1;
        }
        let separators = &n[j..k];
        let plain = separators.iter().filter(|c| matches!(c, ' ' | '-' | '.')).count();
        let parens = separators.len() - plain;
        if separators.is_empty() || plain > 1 || parens > 1 || !n.get(k).is_some_and(char::is_ascii_digit) {
            break;
        }
        let next_group = n[k..].iter().take_while(|c| c.is_ascii_digit()).count();
        if separators.contains(&'.') {
            part.dots += 1;
            part.short_after_dot |= next_group < 3;
        }
        if separators.contains(&' ') {
            parts.push(std::mem::replace(&mut part, Part::new(k)));
        }
        j = k;
    }
    let end = part.end;
    parts.push(part);
    Some(Number { parts, plus, end, last_touches_word: n.get(end).is_some_and(|c| word(*c)) })
}

fn email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

/// An e-mail address starting at `i` (a local part not preceded by one), its end.
fn email_at(chars: &[char], i: usize) -> Option<usize> {
    if !email_local(chars[i]) || (i > 0 && email_local(chars[i - 1])) {
        return None;
    }
    let mut at = i;
    while at < chars.len() && email_local(chars[at]) {
        at += 1;
    }
    if at == i || at >= chars.len() || chars[at] != '@' {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '-')) {
        end += 1;
    }
    while end > at + 1 && chars[end - 1] == '.' {
        end -= 1;
    }
    let domain: String = chars[at + 1..end].iter().collect();
    (domain.contains('.') && !domain.starts_with('.')).then_some(end)
}

/// Where a JSON document sits: customer data (an event payload, attributes, a message's
/// variables), where a bare `name` is a person's, or a document about something else (an
/// audit detail, a journey definition, an order's items), where `name` names that thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    CustomerData,
    Document,
}

/// Whether `key` holds personal data where it sits.
fn is_personal_key(key: &str, within: Within) -> bool {
    match within {
        Within::CustomerData => is_personal_attribute(key),
        Within::Document => key != "name" && is_personal_attribute(key),
    }
}

/// A personal value as shown masked: phones and e-mail addresses as identifiers are, other text
/// as its first character and `***`, a number as `***`; an object or a list holds nothing but
/// personal values.
fn mask_personal_value(key: &str, value: &mut Value) {
    let lower = key.to_ascii_lowercase();
    match value {
        Value::String(s)
            if lower.contains("phone") || lower.contains("mobile") || has_tel_word(key) || key.contains("手机") || key.contains("电话") =>
        {
            *s = identity::mask(&IdentityKind::Phone, s)
        }
        Value::String(s) if lower.contains("mail") && s.contains('@') => *s = identity::mask(&IdentityKind::Email, s),
        Value::String(s) => *s = mask_text(s),
        Value::Number(_) => *value = Value::String("***".into()),
        Value::Object(map) => map.iter_mut().for_each(|(k, v)| mask_personal_value(k, v)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_personal_value(key, v)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Mask a profile object (as payloads and snapshots carry it): name, birthday, personal attributes.
fn mask_profile_object(map: &mut Map<String, Value>) {
    for (key, value) in map.iter_mut() {
        match (key.as_str(), &mut *value) {
            ("name", Value::String(s)) => *s = mask_text(s),
            ("birthday", v) => *v = Value::Null,
            ("attributes", Value::Object(attrs)) => mask_attributes(attrs),
            _ => {}
        }
    }
}

fn mask_attributes(attrs: &mut Map<String, Value>) {
    for (key, value) in attrs.iter_mut() {
        if is_personal_attribute(key) {
            *value = match value {
                Value::String(s) => Value::String(mask_text(s)),
                Value::Null => Value::Null,
                _ => Value::String("***".into()),
            };
        } else {
            mask_json(value, Within::CustomerData);
        }
    }
}

/// Mask personal data in a JSON document that is not itself customer data (an audit detail, a
/// journey definition): identifiers (`{"kind", "value"}`), profiles and customers, personal keys
/// but a bare `name` (the name of what the document is about), and phones and e-mail addresses
/// in any string. Customer data inside it (`profile`, `customer`, `attributes`, `payload`) is
/// masked as customer data.
pub fn mask_payload(v: &mut Value) {
    mask_json(v, Within::Document);
}

/// Mask personal data in customer data (an event payload, attributes, a message's variables, a
/// merge record): as [`mask_payload`], and a bare `name` too unless its object is a thing
/// ([`NAMED_THINGS`]: an order's items, a segment).
pub fn mask_customer_data(v: &mut Value) {
    mask_json(v, Within::CustomerData);
}

fn mask_json(v: &mut Value, within: Within) {
    match v {
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).and_then(|k| k.parse::<IdentityKind>().ok());
            if let Some(kind) = kind
                && let Some(Value::String(value)) = map.get_mut("value")
            {
                *value = mask_identity(&kind, value);
            }
            // A filter on a personal field (a journey's `where`) holds the value it compares.
            let field = map.get("field").and_then(Value::as_str).filter(|f| is_personal_field(f)).map(str::to_owned);
            if let Some(field) = field
                && let Some(compared) = map.get_mut("value")
            {
                mask_personal_value(&field, compared);
            }
            // A segment-language condition on a personal field holds the value it compares (a
            // birthday's anniversary test compares a number of days, its presence a boolean).
            let op = map.get("op").and_then(Value::as_str);
            let compared_field = match (map.get("profile"), map.get("attribute")) {
                (Some(Value::String(field)), _)
                    if field == "name"
                        || (field == "birthday" && !matches!(op, Some("exists" | "within_last_days" | "within_next_days"))) =>
                {
                    Some(field.clone())
                }
                (_, Some(Value::String(attribute))) if is_personal_attribute(attribute) => Some(attribute.clone()),
                _ => None,
            };
            if let Some(field) = compared_field
                && let Some(compared) = map.get_mut("value")
            {
                mask_personal_value(&field, compared);
            }
            for (key, value) in map.iter_mut() {
                match (key.as_str(), &mut *value) {
                    // A journey's `customer` condition is a segment-language node, not a profile.
                    ("customer", Value::Object(inner)) if ["op", "and", "or", "not"].iter().any(|k| inner.contains_key(*k)) => {
                        mask_json(value, Within::Document)
                    }
                    ("profile" | "customer", Value::Object(inner)) => {
                        mask_profile_object(inner);
                        inner.values_mut().for_each(|v| mask_json(v, Within::CustomerData));
                    }
                    ("birthday", v) => *v = Value::Null,
                    ("attributes", Value::Object(attrs)) => mask_attributes(attrs),
                    ("customers" | "payload", inner) => mask_json(inner, Within::CustomerData),
                    ("nick" | "unionid" | "address" | "recipient", Value::String(s)) => *s = mask_text(s),
                    (key, value) if is_personal_key(key, within) => mask_personal_value(key, value),
                    (key, value) if NAMED_THINGS.contains(&key) => mask_json(value, Within::Document),
                    (_, value) => mask_json(value, within),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, within)),
        Value::String(s) => *s = mask_free_text(s),
        // A phone stored as a number under a key that does not say so (`"联系方式": 13812345678`),
        // or compared with one in a definition: an integer as long as a phone is read as text,
        // and one that is a phone is shown masked.
        Value::Number(n) => {
            if let Some(digits) = n.as_u64().map(|n| n.to_string())
                && (11..=15).contains(&digits.len())
            {
                let masked = mask_free_text(&digits);
                if masked != digits {
                    *v = Value::String(masked);
                }
            }
        }
        _ => {}
    }
}

/// Whether a dotted field of customer data (a journey filter's `order.receiver_name`, `收货人`)
/// is personal: a part of it is a personal key or names a personal attribute, other than the
/// objects that hold such keys (`attributes.vip_level`, `profile.gender` are not) and a `name`
/// below a thing (`items.name`).
pub fn is_personal_field(field: &str) -> bool {
    let parts: Vec<&str> = field.split('.').map(str::trim).collect();
    parts.iter().enumerate().any(|(i, part)| {
        let thing_name = *part == "name" && i > 0 && NAMED_THINGS.contains(&parts[i - 1]);
        let holder = matches!(*part, "attributes" | "profile" | "identities");
        !thing_name && !holder && (PERSONAL_KEYS.contains(part) || is_personal_attribute(part))
    })
}

/// A value the API serialises that may hold personal data, masked for a key without `pii:read`.
pub trait Personal {
    fn mask_personal(&mut self);
}

impl Personal for crate::model::IdentityView {
    fn mask_personal(&mut self) {
        if let Ok(kind) = self.kind.parse::<IdentityKind>() {
            self.value = mask_identity(&kind, &self.value);
        }
    }
}

impl Personal for crate::model::Profile {
    fn mask_personal(&mut self) {
        if let Some(name) = self.name.as_mut() {
            *name = mask_text(name);
        }
        self.birthday = None;
        mask_attributes(&mut self.attributes);
    }
}

/// Why a tag was given is free text a plugin or an operator wrote.
impl Personal for crate::model::Tag {
    fn mask_personal(&mut self) {
        if let Some(reason) = self.reason.as_mut() {
            *reason = mask_free_text(reason);
        }
    }
}

impl Personal for crate::model::Customer {
    fn mask_personal(&mut self) {
        self.profile.mask_personal();
        self.identities.iter_mut().for_each(Personal::mask_personal);
        // Why a tag or a score was given is free text a plugin or an operator wrote.
        self.tags.iter_mut().for_each(Personal::mask_personal);
        for explanation in self.scores.iter_mut().filter_map(|s| s.explanation.as_mut()) {
            *explanation = mask_free_text(explanation);
        }
    }
}

impl Personal for crate::model::CustomerDetail {
    fn mask_personal(&mut self) {
        self.customer.mask_personal();
        self.timeline.iter_mut().for_each(Personal::mask_personal);
    }
}

impl Personal for crate::model::Merge {
    fn mask_personal(&mut self) {
        self.identities.iter_mut().for_each(Personal::mask_personal);
        self.reason = mask_free_text(&self.reason);
    }
}

/// Payload text that may hold personal data; anything else is passed on without being parsed.
/// It agrees with [`mask_customer_data`] by construction: every key that masks holds a part of
/// [`PERSONAL_KEY_PARTS`] or `tel`, or is a structural key listed here, and every phone [`mask_free_text`]
/// finds has a `+` or at least 11 digits.
fn may_hold_personal(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["\"kind\"", "\"profile\"", "\"customer\"", "\"customers\"", "\"payload\"", "\"birthday\"", "\"attributes\"", "\"name\""]
        .iter()
        .any(|k| lower.contains(k))
        || text.contains('@')
        || PERSONAL_KEY_PARTS.iter().any(|p| lower.contains(p))
        // A key with `tel` as a word ([`has_tel_word`]) holds the letters.
        || lower.contains("tel")
        || PERSONAL_KEYS.iter().any(|k| lower.contains(&format!("\"{k}\"")))
        || long_number(text)
}

/// Whether `text` has a `+` or a run of at least 11 digits (ASCII or full-width), separators
/// between them allowed: the least a phone in free text has.
fn long_number(text: &str) -> bool {
    let mut digits = 0;
    for c in text.chars().map(narrow) {
        if c == '+' {
            return true;
        }
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 11 {
                return true;
            }
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')') {
            digits = 0;
        }
    }
    false
}

impl Personal for crate::model::Event {
    fn mask_personal(&mut self) {
        if !may_hold_personal(self.payload.as_str()) {
            return;
        }
        let mut value = self.payload.value();
        mask_customer_data(&mut value);
        self.payload = value.into();
    }
}

impl Personal for crate::model::AuditEntry {
    fn mask_personal(&mut self) {
        mask_payload(&mut self.detail);
        if let Some(target) = self.target.as_mut() {
            *target = mask_free_text(target);
        }
    }
}

impl Personal for crate::messaging::Message {
    fn mask_personal(&mut self) {
        if let Some(recipient) = self.recipient.as_mut() {
            *recipient = match crate::messaging::recipient_kind(&self.channel) {
                Some(kind) => mask_identity(&kind, recipient),
                None => mask_free_text(recipient),
            };
        }
        // A variable is customer data: one a journey filled from a personal placeholder, or one
        // whose name says it is personal (`name`, `receiver_phone`, set by an API caller).
        for (name, value) in self.variables.iter_mut() {
            *value = if self.personal_variables.contains(name) || is_personal_attribute(name) {
                let mut masked = Value::String(std::mem::take(value));
                mask_personal_value(name, &mut masked);
                masked.as_str().unwrap_or_default().to_owned()
            } else {
                mask_free_text(value)
            };
        }
        for event in &mut self.history {
            event.detail = mask_free_text(&event.detail);
        }
        if let Some(reason) = self.reason.as_mut() {
            *reason = mask_free_text(reason);
        }
    }
}

impl Personal for crate::plugin::PluginLog {
    fn mask_personal(&mut self) {
        self.message = mask_logged(&self.message);
    }
}

/// A plugin's log line masked: every JSON object or list written in it, wherever it sits
/// (`[info] posting {"receiver_name": …} ok`, two in a line), is customer data, and the text
/// around them free text. Each `{` or `[` is tried as the start of a JSON value; one that is
/// not is text. A try stops at the first error, and nesting deeper than serde_json's limit
/// (128) is one, so a line of unclosed brackets costs at most that many passes over it.
fn mask_logged(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let (mut text_from, mut at) = (0, 0);
    while let Some(found) = message[at..].find(['{', '[']) {
        let start = at + found;
        let mut values = serde_json::Deserializer::from_str(&message[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(mut value)) => {
                let end = start + values.byte_offset();
                out.push_str(&mask_free_text(&message[text_from..start]));
                mask_customer_data(&mut value);
                out.push_str(&value.to_string());
                (text_from, at) = (end, end);
            }
            _ => at = start + 1,
        }
    }
    out.push_str(&mask_free_text(&message[text_from..]));
    out
}

impl Personal for crate::loyalty::LedgerEntry {
    fn mask_personal(&mut self) {
        self.reason = mask_free_text(&self.reason);
    }
}

impl Personal for crate::loyalty::PointsAccount {
    fn mask_personal(&mut self) {
        // Why a tier changed is free text the deciding plugin wrote.
        for change in &mut self.tier_history {
            change.reason = mask_free_text(&change.reason);
        }
    }
}

impl Personal for crate::plugin::DeadLetter {
    fn mask_personal(&mut self) {
        self.error = mask_free_text(&self.error);
    }
}

impl Personal for crate::plugin::Subscription {
    fn mask_personal(&mut self) {
        if let Some(error) = self.last_error.as_mut() {
            *error = mask_free_text(error);
        }
    }
}

impl Personal for crate::plugin::PluginRun {
    fn mask_personal(&mut self) {
        if let Some(error) = self.error.as_mut() {
            *error = mask_free_text(error);
        }
    }
}

impl<T: Personal> Personal for Vec<T> {
    fn mask_personal(&mut self) {
        self.iter_mut().for_each(Personal::mask_personal);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, Utc};
    use serde_json::json;

    use super::*;
    use crate::model::{AuditEntry, Customer, CustomerDetail, Event, IdentityView, Merge, Profile, Stats};

    /// Every personal value the samples hold, none of which may survive masking.
    const SECRETS: [&str; 14] = [
        "138-1234-5678",
        "138 1234 5678",
        "１３８１２３４５６７８",
        "Li Ming",
        "西湖路8号",
        "+8613812345678",
        "13812345678",
        "ming@example.com",
        "Ming Li",
        "1990-04-01",
        "oUnion0123456789",
        "mingming_nick",
        "No. 8 West Lake Road",
        "440101199004011234",
    ];

    fn identities() -> Vec<IdentityView> {
        [("phone", "+8613812345678"), ("email", "ming@example.com"), ("unionid", "oUnion0123456789"), ("nick", "mingming_nick")]
            .into_iter()
            .map(|(kind, value)| IdentityView { kind: kind.into(), value: value.into(), created_at: Utc::now() })
            .collect()
    }

    fn customer() -> Customer {
        let attributes = json!({"address": "No. 8 West Lake Road", "id_card": "440101199004011234", "vip_level": 3});
        Customer {
            id: 1,
            profile: Profile {
                name: Some("Ming Li".into()),
                gender: Some("f".into()),
                birthday: NaiveDate::from_ymd_opt(1990, 4, 1),
                province: Some("浙江".into()),
                city: Some("杭州".into()),
                attributes: attributes.as_object().unwrap().clone(),
            },
            identities: identities(),
            stats: Stats::default(),
            tags: vec![],
            scores: vec![],
            points: 0,
            tier: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn event(payload: Value) -> Event {
        Event { seq: 1, kind: "x".into(), customer_id: Some(1), payload: payload.into(), created_at: Utc::now() }
    }

    fn payloads() -> Vec<Value> {
        vec![
            json!({"identities": [{"kind": "phone", "value": "+8613812345678"}, {"kind": "nick", "value": "mingming_nick"}]}),
            json!({"kind": "email", "value": "ming@example.com"}),
            json!({"profile": {"name": "Ming Li", "birthday": "1990-04-01", "attributes": {"address": "No. 8 West Lake Road"}}}),
            json!({"note": "call 13812345678 or write to ming@example.com", "id_card": "x"}),
            json!({"customer": {"name": "Ming Li", "phone": "+8613812345678"}, "unionid": "oUnion0123456789"}),
            json!({"attributes": {"real_name": "Ming Li", "idcard": "440101199004011234"}}),
            json!({"note": "8613812345678, (+86)13812345678, ＋８６ １３８１２３４５６７８, 138 1234 5678 or 138-1234-5678"}),
            json!({"attributes": {"shipping": {"name": "Li Ming", "city": "杭州"}, "contact": {"name": "Li Ming", "tel": "+86 138 1234 5678"}}}),
        ]
    }

    /// Customer data only: a bare `name` is a person's here (in an audit detail it names the thing).
    fn customer_payloads() -> Vec<Value> {
        vec![
            json!({"name": "Li Ming", "real_name": "Ming Li", "contact": {"name": "Li Ming", "mobile": "138-1234-5678"}}),
            json!({"order": {"id": "T1", "receiver_name": "Li Ming", "receiver_mobile": 13812345678_u64, "receiver_address": "西湖路8号",
                             "items": [{"sku": "A", "name": "Tea"}]}, "consignee": "Ming Li", "收货人": "Li Ming"}),
            json!({"buyer": {"name": "Li Ming", "nick": "mingming_nick"}, "segment": {"name": "VIP"}}),
        ]
    }

    fn assert_masked<T: Personal + serde::Serialize>(what: &str, mut value: T) {
        let before = serde_json::to_string(&value).unwrap();
        assert!(SECRETS.iter().any(|s| before.contains(s)), "{what}: the sample holds no personal data: {before}");
        value.mask_personal();
        let after = serde_json::to_string(&value).unwrap();
        for secret in SECRETS {
            assert!(!after.contains(secret), "{what}: `{secret}` survived masking: {after}");
        }
    }

    /// Every type the API serialises that holds personal data goes through [`Personal`];
    /// the API's own test lists the OpenAPI schemas that hold any and checks each is one of these.
    #[test]
    fn every_type_holding_personal_data_masks_all_of_it() {
        assert_masked("Customer", customer());
        assert_masked("CustomerDetail", CustomerDetail { customer: customer(), timeline: payloads().into_iter().map(event).collect() });
        assert_masked(
            "Merge",
            Merge {
                id: 1,
                survivor_id: 1,
                merged_id: 2,
                reason: "same person as 138-1234-5678".into(),
                actor: "a".into(),
                created_at: Utc::now(),
                identities: identities(),
                unmerged_at: None,
                unmerged_by: None,
            },
        );
        for payload in customer_payloads() {
            assert_masked("Event", event(payload));
        }
        for payload in payloads() {
            assert_masked("Event", event(payload.clone()));
            assert_masked(
                "AuditEntry",
                AuditEntry {
                    id: 1,
                    shop_id: Some(1),
                    key_id: None,
                    action: "a".into(),
                    target: None,
                    detail: payload,
                    created_at: Utc::now(),
                },
            );
        }
        let message = crate::messaging::Message {
            id: "m".into(),
            customer_id: 1,
            channel: "sms".into(),
            template: "T".into(),
            variables: BTreeMap::from([
                ("who".into(), "Ming Li".into()),
                ("p".into(), "+8613812345678".into()),
                ("name".into(), "Li Ming".into()),
                ("receiver_phone".into(), "138 1234 5678".into()),
            ]),
            personal_variables: vec!["who".into()],
            status: crate::messaging::MessageStatus::Sent,
            reason: None,
            recipient: Some("+8613812345678".into()),
            plugin_id: None,
            provider_id: None,
            attempts: 1,
            next_attempt_at: None,
            source: "api".into(),
            idempotency_key: "k".into(),
            created_at: Utc::now(),
            sent_at: None,
            delivered_at: None,
            history: vec![crate::messaging::MessageEvent {
                at: Utc::now(),
                status: crate::messaging::MessageStatus::Sent,
                detail: "sent to +8613812345678".into(),
            }],
        };
        assert_masked(
            "PointsAccount",
            crate::loyalty::PointsAccount {
                customer_id: 1,
                balance: 0,
                debt: 0,
                available: 0,
                expiring: vec![],
                tier: Some("gold".into()),
                tier_history: vec![crate::loyalty::TierChange {
                    from: None,
                    to: "gold".into(),
                    reason: "promised on 138 1234 5678".into(),
                    source: "p".into(),
                    at: Utc::now(),
                }],
            },
        );
        assert_masked("TestSend", crate::journeys::TestSend { customer_id: 1, messages: vec![message.clone()] });
        assert_masked("Message", message);
        assert_masked(
            "PluginLog",
            crate::plugin::PluginLog {
                id: 1,
                level: crate::plugin::LogLevel::Info,
                message: r#"posting to +8613812345678 (ming@example.com) {"order": {"receiver_name": "Li Ming", "tel": "138-1234-5678"}}"#
                    .into(),
                created_at: Utc::now(),
            },
        );
    }

    /// The digits of a phone number's text, the four before the last four as `*` (full-width kept).
    fn masked_phone(text: &str) -> String {
        let digits = text.chars().filter(|c| narrow(*c).is_ascii_digit()).count();
        let mut seen = 0;
        text.chars()
            .map(|c| {
                if !narrow(c).is_ascii_digit() {
                    return c;
                }
                seen += 1;
                if seen > digits - 8 && seen <= digits - 4 { '*' } else { c }
            })
            .collect()
    }

    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32('０' as u32 + c.to_digit(10).unwrap()).unwrap(),
                '+' => '＋',
                '(' => '（',
                ')' => '）',
                other => other,
            })
            .collect()
    }

    /// A small deterministic generator, so the forms below cover many numbers without a dependency.
    struct Lcg(u64);

    impl Lcg {
        fn digit(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) % 10) as u32
        }

        fn digits(&mut self, n: usize) -> String {
            (0..n).map(|_| char::from_digit(self.digit(), 10).unwrap()).collect()
        }
    }

    /// Every way a Chinese mobile number or an E.164 number is commonly written, in every
    /// context text puts it in, is masked (the four digits before the last four) and nothing
    /// around it changes.
    #[test]
    fn free_text_masks_phones_however_they_are_written() {
        let mut rng = Lcg(26);
        let forms: [fn(&str, &str, &str) -> String; 17] = [
            |a, b, c| format!("{a}{b}{c}"),
            |a, b, c| format!("86{a}{b}{c}"),
            |a, b, c| format!("0086{a}{b}{c}"),
            |a, b, c| format!("+86{a}{b}{c}"),
            |a, b, c| format!("+86 {a}{b}{c}"),
            |a, b, c| format!("+86-{a}-{b}-{c}"),
            |a, b, c| format!("+86 {a} {b} {c}"),
            |a, b, c| format!("(+86){a}{b}{c}"),
            |a, b, c| format!("(+86) {a} {b} {c}"),
            |a, b, c| format!("(86){a}{b}{c}"),
            |a, b, c| format!("(0086) {a}-{b}-{c}"),
            |a, b, c| format!("+86 ({a}) {b} {c}"),
            |a, b, c| format!("{a}-{b}-{c}"),
            |a, b, c| format!("{a} {b} {c}"),
            |a, b, c| format!("{a}.{b}.{c}"),
            |a, b, c| format!("86 {a} {b} {c}"),
            |a, b, c| format!("0086-{a}{b}{c}"),
        ];
        let contexts = [
            ("", ""),
            ("tel ", "."),
            ("电话:", "，谢谢"),
            ("手机", "。"),
            ("收货人 张三 ", " 浙江省杭州市"),
            ("call (", ")"),
            ("[", "]"),
            ("\"", "\""),
            ("order 2 for ", " at 13:00"),
            ("2026-05-01 ", " 9900"),
            ("x, ", ", y"),
        ];
        let mut tried = 0;
        for _ in 0..20 {
            let second = ['3', '4', '5', '6', '7', '8', '9'][rng.digit() as usize % 7];
            let (a, b, c) = (format!("1{second}{}", rng.digit()), rng.digits(4), rng.digits(4));
            for form in forms {
                for width in [false, true] {
                    let phone = form(&a, &b, &c);
                    let phone = if width { full_width(&phone) } else { phone };
                    for (before, after) in contexts {
                        let text = format!("{before}{phone}{after}");
                        assert_eq!(mask_free_text(&text), format!("{before}{}{after}", masked_phone(&phone)), "{text}");
                        tried += 1;
                    }
                }
            }
        }
        assert!(tried > 7000);
        // Outside China the length depends on the country: a number written right after one, with
        // a space between, is read as part of it when the numbering plan allows (German numbers
        // vary in length), so these contexts leave that out.
        for phone in ["+44 20 7946 0958", "+1 (415) 555-2671", "+1-415-555-2671", "+4930123456", "+33.1.23.45.67.89", "++8613812345678"] {
            for (before, after) in contexts.iter().filter(|(_, after)| !after.starts_with(" 9")) {
                let text = format!("{before}{phone}{after}");
                assert_eq!(mask_free_text(&text), format!("{before}{}{after}", masked_phone(phone)), "{text}");
            }
        }
        // Two numbers side by side: the phone among them is found.
        assert_eq!(mask_free_text("2 13812345678"), "2 138****5678");
        assert_eq!(mask_free_text("138 1234 5678 2"), "138 **** 5678 2");
        assert_eq!(mask_free_text("13812345678/13912345678"), "138****5678/139****5678");
    }

    /// The rule is digits bounded by non-digits: what is not a phone is left whole, never half-masked.
    #[test]
    fn free_text_keeps_numbers_that_are_not_phones_whole() {
        let mut rng = Lcg(7);
        let mut texts: Vec<String> = [
            "order T20260501000123 paid 9900",
            "2026-05-01T08:00:00Z",
            "2026-05-01 08:00:00",
            "sku 1234567",
            "3456789012345678901",
            "a@b",
            "¥13800.00",
            "13800.00",
            "amount 13800.5",
            "+13800.00",
            "points +1000000",
            "12812345678",
            "10812345678",
            "x13812345678",
            "13812345678x",
            "13812345678_2",
            "ORD_13812345678",
            "1717171717",
            "1717171717171",
            "86138123456789",
            "1 2 3 4 5 6 7 8 9 10 11",
            "2026 05 01",
            "v2.13812345678",
            "550e8400-e29b-41d4-a716-446655440000",
        ]
        .map(str::to_owned)
        .into();
        for _ in 0..500 {
            // A 20-digit order number holding a mobile number: whole, however it is cut.
            let inner = format!("13{}", rng.digits(9));
            let cut = rng.digit() as usize % 9 + 1;
            let head = rng.digits(cut);
            let order = format!("{head}{inner}{}", rng.digits(20 - 11 - cut));
            texts.push(format!("order {order} paid"));
            texts.push(format!("{}-{}-{}-{}", &order[..5], &order[5..10], &order[10..15], &order[15..]));
            // UUIDs of digits only where a group could be one.
            texts.push(format!("{}-{}-{}-{}-{}", rng.digits(8), rng.digits(4), rng.digits(4), rng.digits(4), rng.digits(12)));
            // Amounts, timestamps and dates.
            texts.push(format!("paid {}.{}", rng.digits(11), rng.digits(2)));
            texts.push(format!(
                "{}-{:02}-{:02}T{:02}:00:00.{}Z",
                2000 + rng.digits(2).parse::<u32>().unwrap(),
                1 + rng.digit(),
                10 + rng.digit(),
                rng.digit(),
                rng.digits(3)
            ));
            texts.push(format!("at 17{}", rng.digits(11)));
        }
        for text in &texts {
            assert_eq!(&mask_free_text(text), text);
        }
        assert_eq!(mask_free_text("to +86 138 1234 5678."), "to +86 138 **** 5678.");
        assert_eq!(mask_free_text("13812345678"), "138****5678");
        assert_eq!(mask_free_text("Ming <ming@example.com>"), "Ming <m***@example.com>");
    }

    /// Numbers after a `+` end where their country's numbers end, by a table: masking costs the
    /// same for every number, so a payload of many `+` numbers written to be slow is not
    /// (each used to be parsed by the numbering plan up to six times, ~13 µs each: 15 s a MB in a
    /// debug build, on the worker serving the request).
    #[test]
    fn numbers_after_a_plus_are_cut_by_their_country_cheaply() {
        assert_eq!(mask_free_text("+44 20 7946 0958 9900"), "+44 20 **** 0958 9900");
        assert_eq!(mask_free_text("+1 415 555 2671 2"), "+1 41* *** 2671 2");
        assert_eq!(mask_free_text("+86 138 1234 5678 2026"), "+86 138 **** 5678 2026");
        // A code not in the table: the longest run of 8 to 15 digits.
        assert_eq!(mask_free_text("+49 30 123456 7"), "+49 3* ***456 7");
        let unit = "+123 456 789 012 345 678 ";
        let text = unit.repeat((1 << 20) / unit.len());
        let started = std::time::Instant::now();
        let masked = mask_free_text(&text);
        println!("masked {} bytes of `+` numbers in {:?}", text.len(), started.elapsed());
        assert_eq!(masked, "+123 456 7** **2 345 678 ".repeat((1 << 20) / unit.len()));
    }

    /// JSON anywhere in a log line is customer data: after a prefix, before a suffix, two of
    /// them, a list before an object; the text around it is free text.
    #[test]
    fn json_anywhere_in_a_log_line_is_masked() {
        let cases = [
            (r#"[info] posting {"receiver_name":"Li Ming"}"#, r#"[info] posting {"receiver_name":"L***"}"#),
            (r#"posting {"receiver_name":"Li Ming"} ok"#, r#"posting {"receiver_name":"L***"} ok"#),
            (
                r#"a {"name":"Li Ming"} b {"tel":"13812345678"} to 13912345678"#,
                r#"a {"name":"L***"} b {"tel":"138****5678"} to 139****5678"#,
            ),
            (r#"got [1,2] then {"name":"Li Ming"}"#, r#"got [1,2] then {"name":"L***"}"#),
            (r#"{"a": [1, {"name": "Li Ming"}]} {broken"#, r#"{"a":[1,{"name":"L***"}]} {broken"#),
            ("no json [here or {there", "no json [here or {there"),
        ];
        for (line, masked) in cases {
            assert_eq!(mask_logged(line), masked, "{line}");
        }
        // Unclosed brackets are text, and cost at most serde_json's nesting limit per bracket.
        let brackets = "[{\"a\":".repeat(2_000);
        assert_eq!(mask_logged(&brackets), brackets);
    }

    /// A journey's filter on a personal field shows the value it compares masked; one on
    /// another field (an amount, a tier, an item's name, an attribute not named personal) keeps it.
    #[test]
    fn filters_on_personal_fields_are_masked() {
        let mut definition = json!({"trigger": {"event": "order.paid", "where": [
            {"field": "order.receiver_name", "op": "eq", "value": "Li Ming"},
            {"field": "收货人", "op": "in", "value": ["李明", "Ming Li"]},
            {"field": "order.receiver_mobile", "op": "eq", "value": 13812345678_u64},
            {"field": "value", "op": "eq", "value": "+8613812345678"},
            {"field": "amount", "op": "gte", "value": 12000},
            {"field": "items.name", "op": "eq", "value": "Green tea"},
            {"field": "attributes.vip_level", "op": "eq", "value": "gold"},
            {"field": "coupon", "op": "exists", "value": false}
        ]}});
        mask_payload(&mut definition);
        let values: Vec<Value> = definition["trigger"]["where"].as_array().unwrap().iter().map(|f| f["value"].clone()).collect();
        assert_eq!(
            values,
            [
                json!("L***"),
                json!(["李***", "M***"]),
                json!("***"),
                json!("+***"),
                json!(12000),
                json!("Green tea"),
                json!("gold"),
                json!(false)
            ]
        );
    }

    /// A phone stored as a JSON number is masked in customer data whatever its key; other
    /// numbers (amounts, ids, millisecond timestamps) stay numbers.
    #[test]
    fn phones_stored_as_numbers_are_masked() {
        let mut payload = json!({"tel": "13812345678", "home_tel": 13812345678_u64, "联系方式": 13812345678_u64, "qq": 13812345678_u64,
            "buyer": {"numbers": [8613912345678_u64]}, "amount": 13800, "at": 1717171717171_u64, "order_id": 20260501000123_u64});
        mask_customer_data(&mut payload);
        assert_eq!(
            payload,
            json!({"tel": "138****5678", "home_tel": "***", "联系方式": "138****5678", "qq": "138****5678", "buyer": {"numbers": ["86139****5678"]},
                   "amount": 13800, "at": 1717171717171_u64, "order_id": 20260501000123_u64})
        );
        let mut event = event(json!({"联系方式": 13812345678_u64}));
        event.mask_personal();
        assert!(!event.payload.as_str().contains("13812345678"), "{}", event.payload.as_str());
    }

    /// A person's name under a key other than a profile's, in customer data, is masked by the
    /// same definition; the name of a thing (an item, a segment, an audit detail's subject) is not.
    #[test]
    fn names_outside_a_profile_are_masked_in_customer_data_only() {
        let mut payload = json!({
            "name": "Li Ming", "real_name": "Li Ming", "Receiver_Name": "Li Ming", "consignee": "Li Ming", "收货人": "李明",
            "contact": {"name": "Li Ming", "mobile": "13812345678"}, "guest": {"name": "Li Ming"},
            "order": {"receiver_mobile": 13812345678_u64, "receiver_address": "西湖路8号", "items": [{"sku": "A", "name": "Green tea"}]},
            "segment": {"id": 3, "name": "VIP"}, "tag": {"name": "loyal"}, "coupon": {"name": "10 off"}, "amount": 9900,
        });
        mask_customer_data(&mut payload);
        let text = payload.to_string();
        for secret in ["Li Ming", "李明", "13812345678", "西湖路8号"] {
            assert!(!text.contains(secret), "`{secret}`: {text}");
        }
        assert_eq!(payload["name"], "L***");
        assert_eq!(payload["contact"]["mobile"], "138****5678");
        assert_eq!(payload["order"]["receiver_mobile"], "***");
        assert_eq!(payload["order"]["items"][0]["name"], "Green tea");
        assert_eq!(
            (&payload["segment"]["name"], &payload["tag"]["name"], &payload["coupon"]["name"]),
            (&json!("VIP"), &json!("loyal"), &json!("10 off"))
        );
        assert_eq!(payload["amount"], 9900);
        // An audit detail names what it is about; the customer data inside it is still masked.
        let mut detail =
            json!({"name": "VIP", "customer": {"name": "Li Ming"}, "payload": {"name": "Li Ming"}, "receiver_name": "Li Ming"});
        mask_payload(&mut detail);
        assert_eq!(detail, json!({"name": "VIP", "customer": {"name": "L***"}, "payload": {"name": "L***"}, "receiver_name": "L***"}));
        // The same keys are personal placeholders and personal attributes.
        for key in ["receiver_name", "consignee", "contact", "收货人", "real_name", "buyer_name", "name"] {
            assert!(is_personal_attribute(key), "{key}");
            assert!(is_personal_placeholder(&format!("trigger.order.{key}")), "{key}");
        }
        for key in ["segment", "sku", "product_name", "amount", "city", "tier"] {
            assert!(!is_personal_attribute(key), "{key}");
        }
        // `tel` counts as a word of its own, not as letters inside another word.
        for key in ["tel", "tel_no", "home_tel", "contactTel", "TelNo", "telno", "tel2", "Tel-Number", "收货人tel"] {
            assert!(is_personal_attribute(key), "{key}");
        }
        for key in ["hotel_name", "telegram", "satellite", "hotel", "Telescope", "intel_score", "motel"] {
            assert!(!is_personal_attribute(key), "{key}");
        }
        let mut payload = json!({"hotel_name": "Grand", "home_tel": "13812345678"});
        mask_customer_data(&mut payload);
        assert_eq!(payload, json!({"hotel_name": "Grand", "home_tel": "138****5678"}));
    }

    /// A segment-language condition on a personal field (in a segment, or a journey's customer
    /// condition) shows its compared value masked; other conditions show theirs whole.
    #[test]
    fn segment_conditions_on_personal_fields_are_masked() {
        let mut definition = json!({"and": [
            {"profile": "name", "op": "contains", "value": "Li Ming"},
            {"profile": "birthday", "op": "between", "value": ["1990-05-01", "1990-06-01"]},
            {"profile": "birthday", "op": "within_next_days", "value": 7},
            {"attribute": "receiver_mobile", "op": "eq", "value": "13812345678"},
            {"attribute": "qq", "op": "in", "value": [12345]},
            {"attribute": "receiver_name", "op": "exists", "value": true},
            {"attribute": "vip_level", "op": "gte", "value": 3},
            {"profile": "city", "op": "eq", "value": "杭州"},
            {"attribute": "hotel_name", "op": "eq", "value": "Grand"}
        ]});
        mask_payload(&mut definition);
        let values: Vec<Value> = definition["and"].as_array().unwrap().iter().map(|c| c["value"].clone()).collect();
        assert_eq!(
            values,
            vec![
                json!("L***"),
                json!(["1***", "1***"]),
                json!(7),
                json!("138****5678"),
                json!([12345]),
                json!(true),
                json!(3),
                json!("杭州"),
                json!("Grand")
            ]
        );
        // A journey's customer condition, unwrapped, and a phone compared as a number.
        let mut journey = json!({"trigger": {"event": "order.paid", "customer": {"profile": "birthday", "op": "eq", "value": "1990-04-01"},
            "where": [{"field": "remark", "op": "in", "value": [13812345678_u64]}]},
            "steps": {"b": {"branch": {"customer": {"attribute": "receiver_name", "op": "eq", "value": "Li Ming"}}}}});
        mask_payload(&mut journey);
        assert_eq!(journey["trigger"]["customer"]["value"], "1***");
        assert_eq!(journey["trigger"]["where"][0]["value"], json!(["138****5678"]));
        assert_eq!(journey["steps"]["b"]["branch"]["customer"]["value"], "L***");
    }

    /// An event whose payload holds personal data only in the new forms is not passed over by
    /// the fast path that skips payloads without any.
    #[test]
    fn events_with_only_new_forms_are_masked() {
        for payload in [
            json!({"note": "138-1234-5678"}),
            json!({"note": "１３８１２３４５６７８"}),
            json!({"Consignee": "Li Ming"}),
            json!({"收货人": "Li Ming"}),
            json!({"name": "Li Ming"}),
            json!({"home_tel": "1234 8765"}),
            json!({"TelNo": 12348888}),
        ] {
            let mut e = event(payload.clone());
            e.mask_personal();
            let text = e.payload.as_str().to_owned();
            for secret in ["1234", "１２３４", "Li Ming"] {
                assert!(!text.contains(secret), "{payload}: {text}");
            }
        }
    }

    /// The export's personal columns are the personal fields of the one definition, by name.
    #[test]
    fn export_columns_are_personal_by_the_one_definition() {
        for column in EXPORT_COLUMNS {
            let by_name = is_personal_attribute(column.name) || PERSONAL_KEYS.contains(&column.name);
            assert_eq!(column.personal.is_some(), by_name, "{column:?}");
        }
        let personal: Vec<&str> = EXPORT_COLUMNS.iter().filter(|c| c.personal.is_some()).map(|c| c.name).collect();
        assert_eq!(personal, ["name", "phone", "email", "birthday"]);
        assert_eq!(export_column("phone").and_then(|c| c.personal), Some(PersonalField::Phone));
        assert_eq!(export_column("nope"), None);
    }

    #[test]
    fn placeholders_of_personal_data() {
        for p in
            ["customer.name", "customer.phone", "trigger.value", "trigger.identities", "trigger.profile.name", "trigger.identities.0.value"]
        {
            assert!(is_personal_placeholder(p), "{p}");
        }
        for p in ["customer", "customer.id.x", "trigger.customer.nick", "trigger.order.buyer_phone", "trigger.buyer.real_name"] {
            assert!(is_personal_placeholder(p), "{p}");
        }
        for p in ["customer.id", "trigger.amount", "trigger.order.id", "trigger.order.items.sku", "coupon.code", "journey.name"] {
            assert!(!is_personal_placeholder(p), "{p}");
        }
    }

    /// A placeholder stopping at an object (`{{trigger}}`, `{{trigger.order}}`) is no way around
    /// the path rule: it is refused when saved, for every author, and renders nothing if a payload
    /// holds an object where its author expected a scalar.
    #[test]
    fn placeholders_naming_objects_copy_nothing() {
        use crate::journeys::{JourneyInput, check_input, render};
        let parse = |definition: &Value| {
            check_input(&serde_json::from_value::<JourneyInput>(json!({"name": "j", "definition": definition})).unwrap())
        };
        let def = |text: &str| {
            json!({"trigger": {"event": "order.paid"}, "start": "s",
                   "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {"p": text}}}}})
        };
        // A version stored before this rule still loads; its object placeholders render nothing.
        assert!(crate::journeys::parse(&def("{{trigger.order}}")).is_ok());
        for text in [
            "{{trigger}}",
            "{{customer}}",
            "{{trigger.order}}",
            "{{ trigger.identities }}",
            "{{trigger.profile}}",
            "x {{trigger.order.items}}",
        ] {
            let e = parse(&def(text)).unwrap_err();
            assert_eq!(e.field, "definition.steps.s.send.variables.p", "{text}: {e:?}");
        }
        let d = parse(&def("{{trigger.order.id}} {{trigger.order.items.sku}} {{trigger.amount}}")).unwrap();
        assert!(d.personal_references().is_empty());
        let ctx = json!({
            "trigger": {"amount": 5, "paid": true, "buyer": {"name": "Ming", "nick": "nick_secret_77", "unionid": "oUnion42"},
                        "order": {"id": "T1", "items": [{"sku": "A"}]}, "tags": ["Ming"]},
            "customer": {"id": 7, "name": "Ming"}
        });
        assert_eq!(render("[{{trigger.buyer}}][{{trigger.tags}}][{{trigger.order}}][{{customer}}][{{trigger}}]", &ctx), "[][][][][]");
        assert_eq!(render("{{trigger.order.id}} {{trigger.order.items.sku}} {{trigger.amount}} {{trigger.paid}}", &ctx), "T1 A 5 true");
    }
}
