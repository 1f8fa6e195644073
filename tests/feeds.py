"""Feeds as publishers write them, for the feed diff tests: Atom, RSS 2.0 with the usual
namespaces, entries without ids, and hostile documents."""

from __future__ import annotations

from xml.sax.saxutils import escape

ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"


def atom(posts, *, updated="2026-11-27T10:00:00Z", ids=True, links=True):
    """An Atom feed of ``posts`` (numbers), newest first, with a stylesheet and hub links."""
    entries = []
    for n in posts:
        ident = f"\n    <id>tag:blog.example,2026:post-{n}</id>" if ids else ""
        link = (
            f'\n    <link rel="alternate" href="https://blog.example/posts/{n}/"/>' if links else ""
        )
        entries.append(
            f"""  <entry>
    <title>Post n\u00b0{n} &amp; caf\u00e9</title>{ident}{link}
    <link rel="replies" href="https://blog.example/posts/{n}/comments/"/>
    <updated>2026-11-{n:02d}T09:00:00Z</updated>
    <author><name>Ada</name></author>
    <content type="html">&lt;p&gt;Body of post {n}&lt;/p&gt;</content>
  </entry>
"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<?xml-stylesheet type="text/xsl" href="/feed.xsl"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Le blog</title>
  <subtitle>Caf\u00e9 &amp; code</subtitle>
  <link rel="hub" href="https://hub.example/"/>
  <link rel="self" href="https://blog.example/feed.atom"/>
  <id>tag:blog.example,2026:feed</id>
  <updated>{updated}</updated>
{"".join(entries)}</feed>
""".encode()


def rss(posts, *, build="Fri, 27 Nov 2026 10:00:00 GMT", guids=True, links=True):
    """An RSS 2.0 feed of ``posts`` with content:encoded, dc:creator and media:content."""
    items = []
    for n in posts:
        guid = f'\n      <guid isPermaLink="false">post-{n}</guid>' if guids else ""
        link = f"\n      <link>https://blog.example/posts/{n}/</link>" if links else ""
        items.append(
            f"""    <item>
      <title>Post {n}</title>{link}{guid}
      <dc:creator>Ada Lovelace</dc:creator>
      <pubDate>Thu, {n:02d} Nov 2026 09:00:00 GMT</pubDate>
      <description>{escape(f"<p>Summary {n}</p>")}</description>
      <content:encoded><![CDATA[<p>Full text of post {n} &amp; more</p>]]></content:encoded>
      <media:content url="https://blog.example/img/{n}.jpg" medium="image"/>
    </item>
"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>The blog</title>
    <link>https://blog.example/</link>
    <description>Posts</description>
    <atom:link rel="hub" href="https://hub.example/"/>
    <atom:link rel="self" href="https://blog.example/feed.rss"/>
    <lastBuildDate>{build}</lastBuildDate>
{"".join(items)}  </channel>
</rss>
""".encode()


def billion_laughs(levels=9):
    """RSS whose one item expands to 10**levels "lol"s if entities are expanded."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, levels + 1)
    ]
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  {chr(10).join(entities)}
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><guid>post-1</guid><title>&lol{levels};</title></item>
<item><guid>post-99</guid><title>new</title></item>
</channel></rss>
""".encode()


def external_entity(path):
    """Atom whose new entry pulls a local file in through an external entity."""
    return f"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY secret SYSTEM "file://{path}">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>post-99</id><title>&secret;</title></entry>
</feed>
""".encode()
