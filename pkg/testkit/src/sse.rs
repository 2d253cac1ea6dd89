//! Reading Server-Sent Events off a response body as it arrives: [`take`] cuts the first
//! complete message off a buffer the caller appends body chunks to.

/// One message: its `id`, `event` and `data` fields (several `data` lines joined). A
/// keep-alive comment is a message with none of them ([`Message::is_empty`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The `id` field, when the message has one.
    pub id: Option<String>,
    /// The `event` field ("" when absent).
    pub event: String,
    /// The `data` field ("" when absent).
    pub data: String,
}

impl Message {
    /// True for a message without id, event and data (a comment).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.event.is_empty() && self.data.is_empty()
    }
}

/// The first complete message of `buf` (up to its blank line), removed from it; `None` while
/// `buf` holds none.
pub fn take(buf: &mut String) -> Option<Message> {
    let end = buf.find("\n\n")?;
    let block: String = buf.drain(..end + 2).collect();
    let mut message = Message::default();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            message.id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("event: ") {
            v.clone_into(&mut message.event);
        } else if let Some(v) = line.strip_prefix("data: ") {
            message.data.push_str(v);
        }
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_their_blank_line() {
        let mut buf = String::from(
            ": keep-alive\n\nid: 7\nevent: node-added\ndata: {\"a\":\ndata: 1}\n\nid: 8",
        );
        assert!(take(&mut buf).is_some_and(|m| m.is_empty()));
        let m = take(&mut buf).unwrap();
        assert_eq!(
            (m.id.as_deref(), m.event.as_str(), m.data.as_str()),
            (Some("7"), "node-added", "{\"a\":1}")
        );
        assert_eq!(take(&mut buf), None, "the last message is not complete yet");
        assert_eq!(buf, "id: 8");
    }
}
